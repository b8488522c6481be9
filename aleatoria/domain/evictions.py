"""
What a store evicts to keep history within C{--max-history-bytes}: the
streams last written longest ago go first. Counted by kind for
C{/metrics}, and told in one summed log line at a time, never one a stream.
"""

from twisted.logger import Logger

KINDS = ("room", "direct", "inbox")
"""A room's history, a pair's direct messages, a user's inbox."""


class Evictions:
    """Streams evicted: in all, by kind; and since last told."""

    _log = Logger()

    def __init__(self) -> None:
        self.total = dict.fromkeys(KINDS, 0)
        self._untold = dict.fromkeys(KINDS, 0)
        self._newest: float | None = None
        """Seconds since the last write of the newest stream evicted since last told."""

    def add(self, kind: str, age: float, count: int = 1) -> None:
        """C{count} streams of C{kind} evicted, the newest written C{age} seconds ago."""
        if not count:
            return
        self.total[kind] += count
        self._untold[kind] += count
        self._newest = age if self._newest is None else min(self._newest, age)

    def tell(self, weight: int, budget: int) -> None:
        """One line for the streams evicted since the last, if any."""
        if self._newest is None:
            return
        untold = self._untold
        self._log.warn(
            "Evicted {streams} history streams ({rooms} rooms, {direct} conversations, "
            "{inboxes} inboxes), the newest last written {age:.0f} s ago, to keep history "
            "within --max-history-bytes: {weight} of {budget} bytes",
            streams=sum(untold.values()), rooms=untold["room"], direct=untold["direct"],
            inboxes=untold["inbox"], age=self._newest, weight=weight, budget=budget,
        )
        self._untold = dict.fromkeys(KINDS, 0)
        self._newest = None
