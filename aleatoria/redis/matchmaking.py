"""
Matchmaking on Redis: the pool (the Go server's C{available:webrtc}) and
the matches, each step one script, so two requests on two daemons never
get the same peer and nobody holds two partners.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

from twisted.internet.defer import Deferred
from zope.interface import implementer

from aleatoria.domain.matchmaking import NO_RULES, Ask, Match, Pairing, Seat
from aleatoria.domain.ports import IMatchmaking
from aleatoria.domain.values import Meeting
from aleatoria.redis.connection import CommandLink, Reply
from aleatoria.redis.keys import Keys


@implementer(IMatchmaking)
class RedisMatchmaking:
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    """

    def __init__(self, commands: CommandLink, keys: Keys, rng: random.Random | None = None) -> None:
        self._commands = commands
        self._keys = keys
        self._rng = rng or random.Random()

    def offer(self, user: str, seat: Seat | None = None) -> Deferred[None]:
        if seat is None:
            return self._commands.run("offer", user, "", "[]")
        return self._commands.run("offer", user, seat.segment, _json(seat.interests))

    def withdraw(self, user: str) -> Deferred[None]:
        return self._commands.run("withdraw", user)

    def pair(self, requester: str, skipped: str, ask: Ask = NO_RULES) -> Deferred[Pairing]:
        d = self._commands.run("pair", requester, skipped, self._rng.randrange(1 << 30),
                               self._commands.era, ask.skips, round(ask.rematch_after * 1000),
                               ask.segment, _json(ask.interests), "1" if ask.only else "0")
        return d.addCallback(_pairing)

    def hang_up(self, user: str, peer: str) -> Deferred[bool]:
        return self._commands.run("hang_up", user, peer).addCallback(bool)

    def match_of(self, user: str) -> Deferred[Match | None]:
        d = self._commands.call("hmget", self._keys("match", user), ["peer", "role", "common"])
        return d.addCallback(
            lambda reply: Match(reply[0], reply[1], _common(reply[2])) if reply[0] else None)

    def grace_left(self, user: str) -> Deferred[int]:
        return self._commands.run("grace_left", user).addCallback(int)

    def pool_size(self) -> Deferred[int]:
        return self._commands.call("scard", self._keys("pool"))

    def last_match(self, user: str) -> Deferred[Meeting | None]:
        """The match hash while it lasts (it has no C{ended}), else the meeting it left."""
        fields = ["peer", "at", "ended", "common"]
        d = self._commands.call("hmget", self._keys("match", user), fields)

        def current(reply: Reply) -> Meeting | None | Deferred[Meeting | None]:
            if reply[0]:
                return _meeting(reply)
            d = self._commands.call("hmget", self._keys("meeting", user), fields)
            return d.addCallback(_meeting)

        return d.addCallback(current)


def _meeting(reply: Reply) -> Meeting | None:
    peer, started, ended, common = reply
    if not peer:
        return None
    return Meeting(peer, int(started or 0), int(ended) if ended else None,
                   tuple(_common(common)))


def _pairing(reply: Reply) -> Pairing:
    if reply[0] == "limited":
        return Pairing(None, retry_after=int(reply[1]) / 1000)
    outcome, peer, role, skipped, common = reply
    match = Match(peer, role, _common(common)) if peer else None
    return Pairing(match, fresh=outcome == "fresh", skipped=skipped or None)


def _json(interests: Iterable[str]) -> str:
    return json.dumps(list(interests))


def _common(reply: str | bytes | None) -> tuple[str, ...]:
    """The interests two users share, from the script's JSON (Redis's cjson writes [] as {})."""
    common = json.loads(reply) if reply else []
    return tuple(common) if isinstance(common, list) else ()
