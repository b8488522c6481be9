"""
Matchmaking on Redis: the pool (the Go server's C{available:webrtc}) and
the matches, each step one script, so two requests on two daemons never
get the same peer and nobody holds two partners.
"""

import random

from zope.interface import implementer

from aleatoria.domain.matchmaking import Match, Pairing
from aleatoria.domain.ports import IMatchmaking
from aleatoria.domain.values import Meeting


@implementer(IMatchmaking)
class RedisMatchmaking:
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    """

    def __init__(self, commands, keys, rng=None):
        self._commands = commands
        self._keys = keys
        self._rng = rng or random.Random()

    def offer(self, user):
        return self._commands.run("offer", user)

    def withdraw(self, user):
        return self._commands.run("withdraw", user)

    def pair(self, requester, skipped):
        d = self._commands.run("pair", requester, skipped, self._rng.randrange(1 << 30),
                               self._commands.era)
        return d.addCallback(_pairing)

    def hang_up(self, user, peer):
        return self._commands.run("hang_up", user, peer).addCallback(bool)

    def match_of(self, user):
        d = self._commands.call("hmget", self._keys("match", user), ["peer", "role"])
        return d.addCallback(lambda reply: Match(*reply) if reply[0] else None)

    def grace_left(self, user):
        return self._commands.run("grace_left", user).addCallback(int)

    def pool_size(self):
        return self._commands.call("scard", self._keys("pool"))

    def last_match(self, user):
        """The match hash while it lasts (it has no C{ended}), else the meeting it left."""
        d = self._commands.call("hmget", self._keys("match", user), ["peer", "at", "ended"])

        def current(reply):
            if reply[0]:
                return _meeting(reply)
            d = self._commands.call("hmget", self._keys("meeting", user),
                                    ["peer", "at", "ended"])
            return d.addCallback(_meeting)

        return d.addCallback(current)


def _meeting(reply):
    peer, started, ended = reply
    if not peer:
        return None
    return Meeting(peer, int(started or 0), int(ended) if ended else None)


def _pairing(reply):
    outcome, peer, role, skipped = reply
    match = Match(peer, role) if peer else None
    return Pairing(match, fresh=outcome == "fresh", skipped=skipped or None)
