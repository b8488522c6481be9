"""
Random pairing for video calls, and who is in a call with whom.

The pool (who may be picked) lives in the store, so that picking is atomic
wherever the pool is shared. The matches (who holds which partner, in which
role) live here. PROTOCOL.md section 3 defines the life of a match: it
starts with C{assign_role}, ends with a hangup, a disconnect or a skip, and
nobody ever holds two partners at once.
"""

from dataclasses import dataclass

from twisted.logger import Logger

IMPOLITE = "impolite"
POLITE = "polite"

_PICK_ATTEMPTS = 3


@dataclass(frozen=True)
class Match:
    """One side of a pairing: the partner, and this side's role."""

    peer: str
    role: str


class Matchmaker:
    """
    @param store: an L{aleatoria.store.IStore}; its pool is the pool.
    @param is_online: tells whether a user id can still be reached, so a
        pick never lands on someone who left while it was under way.
    @param watch: C{watch(deferred, operation)} routes the failure of a store
        write nobody waits for to the hub's reporting.
    """

    _log = Logger()

    def __init__(self, store, is_online, watch):
        self._store = store
        self._is_online = is_online
        self._watch = watch
        self._matches = {}
        self._waiting = set()

    def match_of(self, user):
        """The user's current L{Match}, or C{None}."""
        return self._matches.get(user)

    def available(self, user):
        """
        Put C{user} in the pool -- once its current call ends, if it has one,
        so a user in a call is never picked by somebody else.
        """
        if user in self._matches:
            self._waiting.add(user)
        else:
            self._watch(self._store.pool_add(user), "pool_add")

    def unavailable(self, user):
        self._waiting.discard(user)
        self._watch(self._store.pool_remove(user), "pool_remove")

    def end(self, user):
        """
        End C{user}'s match, for both sides. Return the partner's id, or
        C{None} when there was no match.
        """
        match = self._matches.pop(user, None)
        if match is None:
            return None
        self._matches.pop(match.peer, None)
        for side in (user, match.peer):
            if side in self._waiting:
                self._waiting.discard(side)
                self._watch(self._store.pool_add(side), "pool_add")
        return match.peer

    def forget(self, user):
        """
        C{user} is gone: end its match and take it out of the pool. Return
        the former partner's id, or C{None}.
        """
        self._waiting.discard(user)
        peer = self.end(user)
        self._watch(self._store.pool_remove(user), "pool_remove")
        return peer

    async def pick(self, requester, skipped):
        """
        Pair C{requester} with a random user of the pool other than
        C{skipped}. Return C{(match, fresh)}: the requester's L{Match} (or
        C{None} when nobody fits), and whether it was made just now rather
        than by a request that crossed this one.
        """
        exclude = {skipped} if skipped else set()
        for _ in range(_PICK_ATTEMPTS):
            peer = await self._store.pool_pick(requester, exclude)
            crossed = self._matches.get(requester)
            if crossed is not None or not self._is_online(requester):
                if peer is not None:
                    self._watch(self._store.pool_add(peer), "pool_add")
                return crossed, False
            if peer is None:
                return None, False
            if self._is_online(peer) and peer not in self._matches:
                self._matches[peer] = Match(requester, POLITE)
                mine = self._matches[requester] = Match(peer, IMPOLITE)
                return mine, True
            self._log.info("Skipped stale pool entry {peer}", peer=peer)
            exclude.add(peer)
        return None, False
