"""
Reports on Redis: each a hash (C{report:{id}}: its place and the report,
msgspec JSON) that expires with its time, and an index of their places
(C{reports}, sorting as they were filed) from which expired ones are
dropped as they are met; what each user filed this hour counts in
C{reports:filed:{id}}.
"""

from __future__ import annotations

import msgspec
from twisted.internet.defer import Deferred
from zope.interface import implementer

from aleatoria.domain.clock import format_ns
from aleatoria.domain.limits import Seconds
from aleatoria.domain.reports import Report, place_of
from aleatoria.domain.safety_ports import IReports
from aleatoria.redis.connection import CommandLink
from aleatoria.redis.keys import Keys

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Report).decode


@implementer(IReports)
class RedisReports:
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    @param seconds: the clock, for which reports have expired.
    """

    def __init__(self, commands: CommandLink, keys: Keys, seconds: Seconds) -> None:
        self._commands = commands
        self._keys = keys
        self._seconds = seconds

    def count_in(self, user: str, per_hour: int) -> Deferred[float]:
        d = self._commands.run("report_quota", user, per_hour)
        return d.addCallback(lambda ms: int(ms) / 1000)

    def file(self, report: Report, ttl: int) -> Deferred[None]:
        expired = format_ns(int((self._seconds() - ttl) * 1e9))
        return self._commands.run("file_report", report.id, _encode(report).decode(),
                                  place_of(report), int(ttl), expired)

    def get(self, report_id: str) -> Deferred[Report | None]:
        d = self._commands.call("hget", self._keys("report", report_id), "report")
        return d.addCallback(lambda kept: _decode(kept) if kept else None)

    def page(self, limit: int, after: str = "") -> Deferred[list[Report]]:
        d = self._commands.run("reports_page", limit, after)
        return d.addCallback(lambda kept: [_decode(report) for report in kept])

    def delete(self, report_id: str) -> Deferred[bool]:
        return self._commands.run("delete_report", report_id).addCallback(bool)
