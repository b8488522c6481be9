"""
Matchmaking in the embedded backend: the pool and the matches, each step
atomic (one process), with the rules of L{aleatoria.domain.matchmaking}.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.limits import Seconds
from aleatoria.domain.matchmaking import IMPOLITE, NO_RULES, POLITE, Ask, Match, Pairing, Seat
from aleatoria.domain.ports import MEETING_KEPT, IMatchmaking
from aleatoria.domain.values import Meeting
from aleatoria.memory.pairing_rules import Rematches, Skips
from aleatoria.memory.pool import Pool

if TYPE_CHECKING:
    from aleatoria.memory.blocks import MemoryBlocks


@implementer(IMatchmaking)
class MemoryMatchmaking:
    """
    @param rng: where random choices come from.
    @param seconds: the clock, for when matches begin and end, the graces
        of held matches, and the rules of a request
        (L{aleatoria.domain.matchmaking.Ask}).
    @param grace: seconds a match is held for a user whose connection was
        lost (L{leave}); 0: not held.
    @ivar blocks: the L{aleatoria.memory.blocks.MemoryBlocks} pairing honours.
    """

    def __init__(self, rng: random.Random | None, seconds: Seconds, grace: float = 0) -> None:
        self._rng = rng or random.Random()
        self._seconds = seconds
        self._skips = Skips(seconds)
        self._rematches = Rematches(seconds)
        self._grace = grace
        self.blocks: MemoryBlocks = None  # type: ignore[assignment]  # the backend sets it
        self._meetings: dict[str, Meeting] = {}
        """Each user's current or most recent match, as a L{Meeting}."""
        self.pool = Pool()
        self._waiting: set[str] = set()
        self.matches: dict[str, Match] = {}
        self.held: dict[str, float] = {}
        """Each user whose match is held: when its grace ends."""

    def offer(self, user: str, seat: Seat | None = None) -> Deferred[None]:
        if seat is not None:
            self.pool.seat(user, seat)
        if user in self.matches:
            self._waiting.add(user)
        else:
            self.pool.enter(user)
        return succeed(None)

    def withdraw(self, user: str) -> Deferred[None]:
        self._waiting.discard(user)
        self.pool.forget(user)
        return succeed(None)

    def pair(self, requester: str, skipped: str, ask: Ask = NO_RULES) -> Deferred[Pairing]:
        wait = self._skips.take(requester, ask.skips)
        if wait is not None:
            return succeed(Pairing(None, retry_after=wait))
        current = self.matches.get(requester)
        if current is not None:
            if current.peer != skipped:
                return succeed(Pairing(current))
            self.end_match(requester)
        blocks, rematches = self.blocks, self._rematches
        peer = self.pool.choose(ask, {requester, skipped}, self._rng,
                                lambda user: not blocks.blocks(requester, user)
                                and not rematches.barred(requester, user))
        if peer is None:
            if ask.only:  # it waits for somebody who shares an interest
                self.pool.seat(requester, Seat(ask.segment, ask.interests))
                self.pool.enter(requester)
            # a Match is never false: skipped is its peer or None
            return succeed(Pairing(
                None, skipped=current and current.peer))  # type: ignore[arg-type]
        common = self.pool.common(peer, ask.interests)
        for user in (requester, peer):
            self.pool.exit(user)
            self._waiting.discard(user)
        self.matches[peer] = Match(requester, POLITE, common)
        mine = self.matches[requester] = Match(peer, IMPOLITE, common)
        rematches.paired(requester, peer, ask.rematch_after)
        now = self._ms()
        self._meetings[peer] = Meeting(requester, now, common=tuple(common))
        self._meetings[requester] = Meeting(peer, now, common=tuple(common))
        return succeed(Pairing(  # a Match is never false: skipped is its peer or None
            mine, fresh=True, skipped=current and current.peer))  # type: ignore[arg-type]

    def hang_up(self, user: str, peer: str) -> Deferred[bool]:
        current = self.matches.get(user)
        if current is None or current.peer != peer:
            return succeed(False)
        self.end_match(user)
        return succeed(True)

    def leave(self, user: str, hold: bool = False) -> str | None:
        """
        C{user}'s session ended: out of the pool, its match ended -- or,
        with C{hold} and a grace, held until the grace ends. The former
        peer, or C{None} (none, or held).
        """
        self._waiting.discard(user)
        self.pool.forget(user)
        if hold and self._grace > 0 and user in self.matches:
            self.held[user] = self._seconds() + self._grace
            return None
        return self.end_match(user)

    def resume(self, user: str) -> Match | None:
        """C{user} is back: its held L{Match}, held no more; or C{None}."""
        if self.held.pop(user, None) is None:
            return None
        return self.matches[user]

    def grace_left(self, user: str) -> Deferred[int]:
        ends = self.held.get(user)
        return succeed(0 if ends is None else max(1, math.ceil((ends - self._seconds()) * 1000)))

    def lapse(self) -> list[tuple[str, str]]:
        """End the matches whose grace is over: C{[(user, peer)]}."""
        now = self._seconds()
        over = [user for user, ends in self.held.items() if ends <= now]
        # a held user is matched: ending its match gives the peer
        return [(user, self.end_match(user)) for user in over if user in self.held]  # type: ignore[misc]

    def end_match(self, user: str) -> str | None:
        """End C{user}'s match; sides waiting for it enter the pool. The peer, or C{None}."""
        match = self.matches.pop(user, None)
        if match is None:
            return None
        del self.matches[match.peer]
        self._rematches.ended(user, match.peer)
        self.held.pop(user, None)
        self.held.pop(match.peer, None)
        now = self._ms()
        for side in (user, match.peer):
            meeting = self._meetings.get(side)
            if meeting is not None:
                self._meetings[side] = Meeting(meeting.peer, meeting.started, now,
                                               meeting.common)
        for side in (user, match.peer):
            if side in self._waiting:
                self._waiting.discard(side)
                self.pool.enter(side)
        return match.peer

    def match_of(self, user: str) -> Deferred[Match | None]:
        return succeed(self.matches.get(user))

    def pool_size(self) -> Deferred[int]:
        return succeed(len(self.pool))

    def last_match(self, user: str) -> Deferred[Meeting | None]:
        return succeed(self._meetings.get(user))

    def expire(self) -> None:
        """Forget the matches that ended longer than L{MEETING_KEPT} ago."""
        since = self._ms() - MEETING_KEPT * 1000
        self._meetings = {user: meeting for user, meeting in self._meetings.items()
                          if meeting.ended is None or meeting.ended > since}

    def _ms(self) -> int:
        return int(self._seconds() * 1000)
