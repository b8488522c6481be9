"""
Bans on Redis: each kept as C{ban:{id}} until it ends (the key expires
then), indexed by end in C{bans}; setting or lifting one publishes it, in
the same script, on the channel every daemon hears (L{RedisBus.hear}).

Pub/sub delivers at most once: what a daemon misses while it does not
listen, it reads when it listens again -- the listener loads every ban
in force whenever both connections are up after either was down, the
first time included, and again a little later if that load failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.events import Ban, BanLifted
from aleatoria.domain.safety_ports import IBans
from aleatoria.redis import codec
from aleatoria.redis.bus import RedisBus
from aleatoria.redis.connection import CommandLink

if TYPE_CHECKING:
    from aleatoria.domain.bans import Bans

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Ban).decode


RELOAD_SECONDS = 5
"""Seconds after a failed load before the next."""


@implementer(IBans)
class RedisBans(Service):
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param bus: the L{aleatoria.redis.bus.RedisBus}.
    """

    _log = Logger()

    def __init__(self, commands: CommandLink, bus: RedisBus, reactor: IReactorTime) -> None:
        self._commands = commands
        self._bus = bus
        self._reactor = reactor
        self._listener: Bans | None = None
        self._retry: IDelayedCall | None = None
        commands.watch(self._linked)
        bus.watch(self._linked)
        bus.hear("ban", self._heard)

    def listen(self, listener: Bans) -> None:
        self._listener = listener

    def add(self, ban: Ban) -> Deferred[None]:
        post = codec.post("ban", self._bus.node, ban.id, ban)
        return self._commands.run("ban", ban.id, _encode(ban), _ms(ban.expires_at),
                                  _ms(ban.created_at), post)

    def lift(self, ban_id: str, now: float) -> Deferred[Ban | None]:
        post = codec.post("ban", self._bus.node, ban_id, BanLifted(ban_id))
        d = self._commands.run("unban", ban_id, _ms(now), post)
        return d.addCallback(lambda kept: _bans([kept])[0] if kept else None)

    def all(self, now: float) -> Deferred[list[Ban]]:
        return self._commands.run("bans", _ms(now)).addCallback(_bans)

    def stopService(self) -> None:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()

    def _linked(self, up: bool) -> None:
        if up and self._commands.connected and self._bus.subscribed and self._listener:
            self._listener.load().addCallback(self._loaded)

    def _loaded(self, loaded: bool) -> None:
        if not loaded and self.running and (self._retry is None or not self._retry.active()):
            self._retry = self._reactor.callLater(RELOAD_SECONDS, self._linked, True)

    def _heard(self, push: Ban | BanLifted) -> None:
        if self._listener is None:
            return
        if isinstance(push, Ban):
            self._listener.set(push)
        else:
            self._listener.lifted(push.id)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _bans(kept: Iterable[str | bytes]) -> list[Ban]:
    found: list[Ban] = []
    for text in kept:
        try:
            found.append(_decode(text.encode() if isinstance(text, str) else text))
        except (msgspec.DecodeError, RecursionError) as e:
            RedisBans._log.warn("Skipped an unreadable ban: {why}", why=e)
    return found
