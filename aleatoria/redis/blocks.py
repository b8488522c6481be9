"""
Blocks on Redis: each user's set of those it blocks (C{blocks:{id}}),
kept until undone. The pairing and direct-message scripts read them in
their own steps; a block ends the two users' match in its own.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from aleatoria.domain.safety_ports import IBlocks
from aleatoria.domain.values import Blocking
from aleatoria.redis.connection import CommandLink
from aleatoria.redis.keys import Keys


@implementer(IBlocks)
class RedisBlocks:
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    """

    def __init__(self, commands: CommandLink, keys: Keys) -> None:
        self._commands = commands
        self._keys = keys

    def block(self, user: str, other: str, most: int | None = None) -> Deferred[Blocking]:
        d = self._commands.run("block", user, other, "" if most is None else most)
        return d.addCallback(lambda reply: Blocking(*map(bool, reply)))

    def unblock(self, user: str, other: str) -> Deferred[bool]:
        d = self._commands.call("srem", self._keys("blocks", user), other)
        return d.addCallback(bool)

    def blocked(self, user: str) -> Deferred[list[str]]:
        d = self._commands.call("smembers", self._keys("blocks", user))
        return d.addCallback(lambda users: sorted(_text(u) for u in users))

    def between(self, user_a: str, user_b: str) -> Deferred[bool]:
        return self._commands.run("blocks_between", user_a, user_b).addCallback(bool)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
