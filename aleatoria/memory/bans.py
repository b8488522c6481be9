"""
The bans of a daemon alone: in this process's memory, for its life. No
other daemon is told anything; this one's copy follows what it does.
"""

from twisted.internet.defer import succeed
from zope.interface import implementer

from aleatoria.domain.safety_ports import IBans


@implementer(IBans)
class MemoryBans:
    def __init__(self):
        self._bans = {}

    def listen(self, listener):
        pass

    def add(self, ban):
        self._expire(ban.created_at)
        self._bans[ban.id] = ban
        return succeed(None)

    def lift(self, ban_id, now):
        self._expire(now)
        return succeed(self._bans.pop(ban_id, None))

    def all(self, now):
        self._expire(now)
        return succeed(list(self._bans.values()))

    def _expire(self, now):
        for ban_id in [i for i, ban in self._bans.items() if ban.expires_at <= now]:
            del self._bans[ban_id]
