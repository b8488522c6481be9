"""
The bans of a daemon alone: in this process's memory, for its life. No
other daemon is told anything; this one's copy follows what it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.events import Ban
from aleatoria.domain.safety_ports import IBans

if TYPE_CHECKING:
    from aleatoria.domain.bans import Bans


@implementer(IBans)
class MemoryBans:
    def __init__(self) -> None:
        self._bans: dict[str, Ban] = {}

    def listen(self, listener: Bans) -> None:
        pass

    def add(self, ban: Ban) -> Deferred[None]:
        self._expire(ban.created_at)
        self._bans[ban.id] = ban
        return succeed(None)

    def lift(self, ban_id: str, now: float) -> Deferred[Ban | None]:
        self._expire(now)
        return succeed(self._bans.pop(ban_id, None))

    def all(self, now: float) -> Deferred[list[Ban]]:
        self._expire(now)
        return succeed(list(self._bans.values()))

    def _expire(self, now: float) -> None:
        for ban_id in [i for i, ban in self._bans.items() if ban.expires_at <= now]:
            del self._bans[ban_id]
