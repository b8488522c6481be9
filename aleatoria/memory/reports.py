"""
Reports in the embedded backend: kept for their time, at most for the
daemon's life; and what each user filed this hour.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.limits import Seconds
from aleatoria.domain.reports import Report, place_of
from aleatoria.domain.safety_ports import IReports

HOUR = 3600


@implementer(IReports)
class MemoryReports:
    """@param seconds: the clock."""

    def __init__(self, seconds: Seconds) -> None:
        self._seconds = seconds
        self._reports: dict[str, tuple[Report, float]] = {}
        """Each report kept, by id: the report, and when it expires."""
        self._places: list[str] = []
        """The reports' places (L{place_of}), in order: oldest first."""
        self._filed: dict[str, tuple[int, float]] = {}
        """What each user filed this hour: how many, and when its hour ends."""

    def count_in(self, user: str, per_hour: int) -> Deferred[float]:
        now = self._seconds()
        count, ends = self._filed.get(user, (0, now + HOUR))
        if ends <= now:
            count, ends = 0, now + HOUR
        if count >= per_hour:
            return succeed(ends - now)
        self._filed[user] = (count + 1, ends)
        return succeed(0)

    def file(self, report: Report, ttl: int) -> Deferred[None]:
        self._expire()
        self._reports[report.id] = (report, self._seconds() + ttl)
        insort(self._places, place_of(report))
        return succeed(None)

    def get(self, report_id: str) -> Deferred[Report | None]:
        self._expire()
        kept = self._reports.get(report_id)
        return succeed(kept[0] if kept else None)

    def page(self, limit: int, after: str = "") -> Deferred[list[Report]]:
        self._expire()
        end = bisect_left(self._places, after) if after else len(self._places)
        places = self._places[max(0, end - limit):end]
        return succeed([self._reports[_id(place)][0] for place in reversed(places)])

    def delete(self, report_id: str) -> Deferred[bool]:
        kept = self._reports.pop(report_id, None)
        if kept is None:
            return succeed(False)
        self._places.remove(place_of(kept[0]))
        return succeed(True)

    def _expire(self) -> None:
        now = self._seconds()
        gone = [i for i, (_, expires) in self._reports.items() if expires <= now]
        for report_id in gone:
            self.delete(report_id)
        self._filed = {user: filed for user, filed in self._filed.items() if filed[1] > now}


def _id(place: str) -> str:
    return place.rsplit("|", 1)[1]
