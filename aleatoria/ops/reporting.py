"""
Every failure, reported to Sentry with the context to act on it.

One L{Reporter} per daemon. Each connection gets its own L{Report}: its own
Sentry scope with the user, tags and a breadcrumb trail of its own, so an
event about alice never carries bob's trail. Failures logged through
C{twisted.logger} (C{log.failure}, unhandled errors in Deferreds) reach
Sentry too, once, with their tracebacks. Without C{SENTRY_DSN} the same
calls cost next to nothing and send nothing.

What clients can cause on purpose is told within budgets
(L{aleatoria.ops.budgets}): a failure once per kind and minute, a client's
fault within the budget of its connection, address and the daemon; the
rest is counted and summed up, in the log and the metrics alike.

The SDK sends from its own thread; nothing here blocks the reactor, and the
final flush runs in a thread with a 2 second limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sentry_sdk
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, LogEvent, Logger, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria import __version__
from aleatoria.domain.limits import TokenBucket
from aleatoria.ops.budgets import ReportBudget
from aleatoria.ops.scrubbing import scrubbed, scrubber
from aleatoria.ops.tracing import NO_TRACE, TRACES_PER_SECOND, Trace, TraceBudget, _NoTrace

_T = TypeVar("_T")

FLUSH_SECONDS = 2.0



class Report:
    """
    The reporting context of one connection (or of the daemon itself): a
    Sentry scope of its own.
    """

    def __init__(self, reporter: Reporter, user: str | None = None, ip: str | None = None) -> None:
        self._reporter = reporter
        self.user = user
        self.address = ip
        self._faults: TokenBucket | None = None
        self.scope = sentry_sdk.Scope()
        if user is not None:
            self.scope.set_tag("userId", user)
            self.scope.set_user({"id": user, "ip_address": ip})

    def tag(self, key: str, value: str) -> None:
        self.scope.set_tag(key, value)

    def breadcrumb(self, category: str, message: str, level: str = "info", **data: object) -> None:
        """
        Add to this trail only; C{category} is one of C{websocket}, C{room},
        C{message}, C{webrtc}, C{redis}, C{safety}.
        """
        if self._reporter.enabled:
            self.scope.add_breadcrumb(
                category=category, message=message, level=level, data=data
            )

    def capture(self, failure: Failure | BaseException, message: str,
                extra: dict[str, object] | None = None, **tags: Any) -> None:
        """Report a C{Failure} (or exception) with its traceback, in this scope."""
        self._reporter.capture(failure, message, tags, extra, report=self)

    def capture_message(self, message: str, level: str = "warning",
                        extra: dict[str, object] | None = None, **tags: Any) -> None:
        """Report something that went wrong without an exception, in this scope."""
        self._reporter.capture_message(message, level, tags, extra, report=self)

    def failed(self, log: Logger, failure: Failure, what: str, **tags: Any) -> None:
        """
        Log C{failure} through C{log} -- marked reported, so the log observer
        does not send it a second time -- and report it in this scope: the
        first of its kind (operation, error, message type) in a minute. The
        rest of the minute are counted, and summed up in one line.
        """
        # a Failure made of an exception has its type
        kind = (tags.get("operation") or log.namespace,
                failure.type.__name__,  # type: ignore[union-attr]
                tags.get("messageType"))
        if not self._reporter.budget.failure(kind):
            return
        log.failure(
            "{what}{who}", failure, what=what, reported=True,
            who=f" (user {self.user})" if self.user else "", **tags,
        )
        self.capture(failure, what, **tags)

    def fault(self, message: str | None, operation: str, log: Logger | None = None, line: str = "",
              fields: dict[str, object] | None = None, address: str | None = None,
              extra: dict[str, object] | None = None, **tags: Any) -> None:
        """
        Something a client did wrong, which it may do on purpose and as
        often as it likes: C{line} logged through C{log} (with C{fields}),
        and C{message} (if any) reported as a warning tagged C{operation}
        and C{tags} -- within the budget of this connection, of its
        address (C{address}, or the connection's) and of the daemon. Past
        it, counted and summed up instead (L{aleatoria.ops.budgets}).
        """
        budget = self._reporter.budget
        if self._faults is None and self.user is not None:
            self._faults = budget.connection()
        if not budget.fault(operation, self._faults, address or self.address):
            return
        if log is not None:
            log.info(line, **(fields or {}))
        if message is not None:
            self.capture_message(message, extra=extra, operation=operation, **tags)

    def errback(self, operation: str, **tags: Any) -> Callable[[Failure], None]:
        """
        An errback that logs and reports the failure, tagged C{operation},
        and handles it: C{d.addErrback(report.errback("peers_reap"))}.
        """
        log = Logger(namespace=f"aleatoria.{operation}")

        def report(failure: Failure) -> None:
            self.failed(log, failure, f"{operation} failed", operation=operation, **tags)

        return report


class _Off(Report):
    """
    The Report of a Reporter without a DSN, or of none: failures are logged,
    nothing is sent.
    """

    def __init__(self, reporter: Reporter, user: str | None = None, ip: str | None = None) -> None:
        self._reporter = reporter
        self.user = user
        self.address = ip
        self._faults = None

    def tag(self, key: str, value: str) -> None:
        pass

    def breadcrumb(self, category: str, message: str, level: str = "info", **data: object) -> None:
        pass

    def capture(self, failure: Failure | BaseException, message: str,
                extra: dict[str, object] | None = None, **tags: Any) -> None:
        pass

    def capture_message(self, message: str, level: str = "warning",
                        extra: dict[str, object] | None = None, **tags: Any) -> None:
        pass


class Reporter(Service):
    """
    @param dsn: where to send; C{None} turns reporting off.
    @param scrub: strings (passwords) never to send.
    @param on_sent: called for each event handed to the SDK (for metrics).
    @param on_withheld: called with the operation of each failure or client
        fault withheld past its budget (for metrics).
    @param clock: the reactor, for the budgets' windows.
    """

    _log = Logger()

    def __init__(self, dsn: str | None = None, environment: str = "production", debug: bool = False,
                 sample_rate: float = 1.0, release: str | None = None, scrub: Iterable[str] = (),
                 on_sent: Callable[[str], object] | None = None,
                 on_withheld: Callable[[str], object] | None = None,
                 clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.enabled = bool(dsn)
        self._options: dict[str, Any] = dict(  # the SDK's options
            dsn=dsn, environment=environment, debug=debug,
            traces_sampler=TraceBudget(sample_rate, TRACES_PER_SECOND),
            release=release or f"aleatoria@{__version__}",
            event_scrubber=scrubber(),
            default_integrations=False,
            auto_enabling_integrations=False, before_send=self._before_send,
            before_send_transaction=self._before_send,
        )
        self._secrets = [s for s in scrub if s]
        self._on_sent = on_sent
        self.budget = ReportBudget(clock, on_withheld)  # type: ignore[arg-type]  # the reactor
        self._reports: dict[str | None, Report] = {}
        self.daemon = self.report_for()
        self._observer = _FailureObserver(self)

    def report_for(self, user: str | None = None, ip: str | None = None) -> Report:
        """
        A fresh L{Report} with its own scope, for one connection -- the
        user's, until L{forget}: what happens to the user goes there.
        """
        report = (Report if self.enabled else _Off)(self, user, ip)
        if user is not None:
            self._reports[user] = report
        return report

    def report_of(self, user: str | None) -> Report:
        """The report of C{user}'s connection, or (of none) the daemon's."""
        return self._reports.get(user, self.daemon)

    def forget(self, report: Report) -> None:
        """C{report}'s connection is gone."""
        if self._reports.get(report.user) is report:
            del self._reports[report.user]

    def startService(self) -> None:
        super().startService()
        if not self.enabled:
            self._log.info("SENTRY_DSN is not set: error reporting is off")
            return
        sentry_sdk.init(**self._options)
        globalLogPublisher.addObserver(self._observer)
        self._log.info(
            "Reporting to Sentry (environment {env})", env=self._options["environment"]
        )
        self.capture_message("Aleatoria backend started successfully", level="info")

    def stopService(self) -> Deferred[None] | None:
        """
        Sum up what the budgets withheld so far; flush what is queued and
        close, off the reactor thread, within 2 s.
        """
        super().stopService()
        self.budget.stop()
        if not self.enabled:
            return None
        globalLogPublisher.removeObserver(self._observer)
        client = sentry_sdk.get_client()
        return deferToThread(client.close, timeout=FLUSH_SECONDS)

    # Capturing

    def capture(self, failure: Failure | BaseException, message: str,
                tags: dict[str, object] | None = None, extra: dict[str, object] | None = None,
                report: Report | None = None) -> None:
        """
        Report a C{Failure} or exception with its traceback; C{message} says
        what was being done. C{report}: whose scope (default: the daemon's).
        """
        if not self.enabled:
            return
        scope = self._scope_for(report, tags, {"message": message, **(extra or {})})
        sentry_sdk.capture_exception(_exc_info(failure), scope=scope)

    def capture_message(self, message: str, level: str = "warning",
                        tags: dict[str, object] | None = None,
                        extra: dict[str, object] | None = None,
                        report: Report | None = None) -> None:
        """Report something that went wrong without an exception."""
        if not self.enabled:
            return
        scope = self._scope_for(report, tags, extra)
        # one of the SDK's levels, as every caller says it
        sentry_sdk.capture_message(message, level=level, scope=scope)  # type: ignore[arg-type]

    def _scope_for(self, report: Report | None, tags: dict[str, object] | None,
                   extra: dict[str, object] | None) -> sentry_sdk.Scope:
        """A copy of the report's scope, with this event's tags and extra data."""
        scope = (report or self.daemon).scope.fork()
        for key, value in (tags or {}).items():
            scope.set_tag(key, value)
        for key, value in (extra or {}).items():
            scope.set_extra(key, value)
        return scope

    # Tracing

    def trace(self, report: Report, name: str) -> Trace | _NoTrace:
        """A L{Trace} of handling one client message of type C{name}."""
        if not self.enabled:
            return NO_TRACE
        return Trace(sentry_sdk.start_transaction(op="websocket.message", name=name),
                     report.scope)

    # Privacy

    def _before_send(self, event: Any, hint: object) -> Any:
        event = scrubbed(event, self._secrets)
        if self._on_sent is not None:
            self._on_sent(event.get("type") or "event")
        return event


@implementer(ILogObserver)
class _FailureObserver:
    """
    Send failures logged anywhere (C{log.failure}, unhandled errors in
    Deferreds) that nobody reported already: C{_log.failure(...,
    reported=True)} marks those. The first of each kind (logger, error)
    in a minute; the rest are counted.
    """

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def __call__(self, event: LogEvent) -> None:
        failure = event.get("log_failure")
        if failure is None or event.get("reported"):
            return
        component = str(event.get("log_namespace", "unknown"))
        if self._reporter.budget.failure((component, failure.type.__name__, None)):
            self._reporter.capture(failure, event.get("log_format") or "logged failure",
                                   tags={"component": component})


def guarded(function: Callable[[], _T], report: Report | None,
            operation: str) -> Callable[[], _T | None]:
    """
    C{function}, made safe for a timer: an exception is logged and reported
    (tagged C{operation}) instead of stopping the timer that calls it.
    """
    log = Logger(namespace=f"aleatoria.{operation}")
    report = report or Reporter().daemon

    def call() -> _T | None:
        try:
            return function()
        except Exception:
            report.failed(log, Failure(), f"{operation} failed",
                          operation=operation, component="timer")
            return None

    return call


def _exc_info(failure: Failure | BaseException) -> tuple[Any, Any, Any]:
    """The exception info of a Failure (itself a BaseException in Twisted 26) or exception."""
    if isinstance(failure, Failure):
        return (failure.type, failure.value, failure.getTracebackObject())
    return (type(failure), failure, failure.__traceback__)
