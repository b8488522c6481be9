"""
The daemon's log as operators read it: Aleatoria's own lines, one per
event, and of the libraries' only what went wrong (errors, failures) --
not their start-up and shutdown chatter, nor the warnings they log for
what Aleatoria reports in its own words. As twistd's text lines or, with
C{--log-format json}, one JSON object per line.
"""

import json
import sys
from datetime import UTC, datetime

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    PredicateResult,
    formatEvent,
    textFileLogObserver,
)
from twisted.python.logfile import LogFile

_LEGACY_KEYS = frozenset({"message", "system", "isError", "format", "time", "why", "failure"})


def wanted(event):
    """Aleatoria's own events, and anybody's errors and failures."""
    if event.get("log_namespace", "").startswith("aleatoria"):
        return PredicateResult.yes
    if "log_failure" in event or event.get("isError"):
        return PredicateResult.yes
    if event.get("log_level", LogLevel.info) >= LogLevel.error:
        return PredicateResult.yes
    return PredicateResult.no


def as_json(event):
    """
    One line of JSON: time (UTC, RFC 3339), level, source, the message as
    text, the event's own fields (user, peer, room...) and any traceback.
    """
    record = {
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


def _utc(timestamp):
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def observer(log_format, logfile, worker=None):
    """
    What twistd logs to: C{logfile} (standard output for C{""} or C{"-"}),
    filtered by L{wanted}, as text or JSON; with C{--workers}, each line
    names its C{worker}.
    """
    out = sys.stdout if logfile in ("", "-") else LogFile.fromFullPath(logfile)
    sink = FileLogObserver(out, as_json) if log_format == "json" else textFileLogObserver(out)
    if worker is not None:
        sink = _tagged(sink, worker)
    return FilteringLogObserver(sink, [wanted])


def _tagged(sink, worker):
    """C{sink}, its lines saying C{[worker N]} (text) or C{"worker": N} (JSON)."""
    def tag(event):
        event["log_system"] = f"worker {worker}"
        event["worker"] = worker
        sink(event)

    return tag


_chosen: dict = {}


def install(twistd_options, log_format, worker=None):
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


def chosen():
    """The observer L{install} chose."""
    return observer(**_chosen)
