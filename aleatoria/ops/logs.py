"""
The daemon's log as operators read it: Aleatoria's own lines, one per
event, and of the libraries' only what went wrong (errors, failures) --
not their start-up and shutdown chatter, nor the warnings they log for
what Aleatoria reports in its own words. As twistd's text lines or, with
C{--log-format json}, one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogEvent,
    LogLevel,
    PredicateResult,
    formatEvent,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile

_LEGACY_KEYS = frozenset({"message", "system", "isError", "format", "time", "why", "failure"})


def wanted(event: LogEvent) -> PredicateResult:
    """Aleatoria's own events, and anybody's errors and failures."""
    if event.get("log_namespace", "").startswith("aleatoria"):
        return PredicateResult.yes
    if "log_failure" in event or event.get("isError"):
        return PredicateResult.yes
    if event.get("log_level", LogLevel.info) >= LogLevel.error:
        return PredicateResult.yes
    return PredicateResult.no


def as_json(event: LogEvent) -> str:
    """
    One line of JSON: time (UTC, RFC 3339), level, source, the message as
    text, the event's own fields (user, peer, room...) and any traceback.
    """
    record: dict[str, object] = {
        "time": _utc(event.get("log_time")),
        "level": event.get("log_level", LogLevel.info).name,
        "source": event.get("log_namespace", ""),
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in _LEGACY_KEYS or key in record:
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            record[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    line = json.dumps(record, ensure_ascii=False)
    for breaking, escaped in _LINE_BREAKS:
        line = line.replace(breaking, escaped)
    return line + "\n"


_LINE_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))
"""
What JSON leaves unescaped (with C{ensure_ascii=False}) but C{splitlines()}
and JavaScript readers take for the end of a line: one event, one line.
"""


def _utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def observer(log_format: str, logfile: str, worker: int | None = None) -> FilteringLogObserver:
    """
    What twistd logs to: C{logfile} (standard output for C{""} or C{"-"}),
    filtered by L{wanted}, as text or JSON; with C{--workers}, each line
    names its C{worker}.
    """
    out = sys.stdout if logfile in ("", "-") else LogFile.fromFullPath(logfile)
    sink: Callable[[LogEvent], None] = (
        FileLogObserver(out, as_json) if log_format == "json" else textFileLogObserver(out))
    if worker is not None:
        sink = _tagged(sink, worker)
    # twisted.logger takes functions for observers and predicates
    return FilteringLogObserver(sink, [wanted])  # type: ignore[arg-type, list-item]


def _tagged(sink: Callable[[LogEvent], None], worker: int) -> Callable[[LogEvent], None]:
    """C{sink}, its lines saying C{[worker N]} (text) or C{"worker": N} (JSON)."""
    def tag(event: LogEvent) -> None:
        event["log_system"] = f"worker {worker}"
        event["worker"] = worker
        sink(event)

    return tag


_chosen: dict[str, Any] = {}


def install(twistd_options: MutableMapping[str, Any], log_format: str,
            worker: int | None = None) -> None:
    """
    Have twistd log through L{observer}, where it would write text to a
    file or standard output itself -- not when told to use syslog or an
    observer of the operator's choosing. twistd takes the observer's
    factory by its dotted name: L{chosen}.
    """
    if twistd_options.get("logger") or twistd_options.get("syslog"):
        return
    logfile = twistd_options.get("logfile") or ""
    if not logfile and not twistd_options.get("nodaemon"):
        logfile = "twistd.log"
    _chosen.update(log_format=log_format, logfile=logfile, worker=worker)
    twistd_options["logger"] = f"{__name__}.chosen"


def chosen() -> FilteringLogObserver:
    """The observer L{install} chose."""
    return observer(**_chosen)
