"""
Server time, in the form the protocol speaks it.

Every routed or stored message carries a ``createTime`` in RFC 3339 with
nanosecond precision, and room history is ordered and paged by it. Two
messages must never share a time, or paging with ``before`` could skip one,
so :class:`MessageClock` hands out strictly increasing nanoseconds -- at
least a microsecond apart, because Redis keeps scores as doubles, which
near today's epoch cannot tell apart nanoseconds closer than 256.
"""

import functools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

_NS_PER_SECOND = 1_000_000_000
_MIN_STEP_NS = 1000

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d{1,9})\d*)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})\Z"
)


class MessageClock:
    """
    Strictly increasing wall-clock nanoseconds.

    @param now_ns: the underlying source, ``time.time_ns`` unless a test
        injects a deterministic one.
    """

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self._now_ns = now_ns
        self._last = 0

    def next_ns(self) -> int:
        ns = max(self._now_ns(), self._last + _MIN_STEP_NS)
        self._last = ns
        return ns


def format_ns(ns: int) -> str:
    """
    Render Unix nanoseconds as RFC 3339 UTC with all nine fraction digits.
    Every message is stamped, most within the same second as the one
    before: that second's text is made once.
    """
    seconds, fraction = divmod(ns, _NS_PER_SECOND)
    return f"{_second(seconds)}.{fraction:09d}Z"


@functools.lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_rfc3339(text: str) -> int:
    """
    Parse an RFC 3339 timestamp (any offset, up to nanoseconds) into Unix
    nanoseconds.

    @raise ValueError: if C{text} is not RFC 3339.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    zone = match["zone"].upper()
    stamp = datetime.fromisoformat(
        f"{match['date']}T{match['time']}{'+00:00' if zone == 'Z' else zone}"
    )
    fraction = int((match["fraction"] or "0").ljust(9, "0"))
    return int(stamp.timestamp()) * _NS_PER_SECOND + fraction
