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

import re

import sentry_sdk
from twisted.application.service import Service
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, Logger, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria import __version__
from aleatoria.ops.budgets import ReportBudget
from aleatoria.ops.tracing import NO_TRACE, TRACES_PER_SECOND, Trace, TraceBudget

FLUSH_SECONDS = 2.0

_FILTERED = "[Filtered]"
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_TOKEN_PARAM = re.compile(r"((?:token|password|secret)=)[^&\s\"']+", re.IGNORECASE)


class Report:
    """
    The reporting context of one connection (or of the daemon itself): a
    Sentry scope of its own.
    """

    def __init__(self, reporter, user=None, ip=None):
        self._reporter = reporter
        self.user = user
        self.address = ip
        self._faults = None
        self.scope = sentry_sdk.Scope()
        if user is not None:
            self.scope.set_tag("userId", user)
            self.scope.set_user({"id": user, "ip_address": ip})

    def tag(self, key, value):
        self.scope.set_tag(key, value)

    def breadcrumb(self, category, message, level="info", **data):
        """
        Add to this trail only; C{category} is one of C{websocket}, C{room},
        C{message}, C{webrtc}, C{redis}, C{safety}.
        """
        if self._reporter.enabled:
            self.scope.add_breadcrumb(
                category=category, message=message, level=level, data=data
            )

    def capture(self, failure, message, extra=None, **tags):
        """Report a C{Failure} (or exception) with its traceback, in this scope."""
        self._reporter.capture(failure, message, tags, extra, report=self)

    def capture_message(self, message, level="warning", extra=None, **tags):
        """Report something that went wrong without an exception, in this scope."""
        self._reporter.capture_message(message, level, tags, extra, report=self)

    def failed(self, log, failure, what, **tags):
        """
        Log C{failure} through C{log} -- marked reported, so the log observer
        does not send it a second time -- and report it in this scope: the
        first of its kind (operation, error, message type) in a minute. The
        rest of the minute are counted, and summed up in one line.
        """
        kind = (tags.get("operation") or log.namespace, failure.type.__name__,
                tags.get("messageType"))
        if not self._reporter.budget.failure(kind):
            return
        log.failure(
            "{what}{who}", failure, what=what, reported=True,
            who=f" (user {self.user})" if self.user else "", **tags,
        )
        self.capture(failure, what, **tags)

    def fault(self, message, operation, log=None, line="", fields=None, address=None,
              extra=None, **tags):
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

    def errback(self, operation, **tags):
        """
        An errback that logs and reports the failure, tagged C{operation},
        and handles it: C{d.addErrback(report.errback("peers_reap"))}.
        """
        log = Logger(namespace=f"aleatoria.{operation}")

        def report(failure):
            self.failed(log, failure, f"{operation} failed", operation=operation, **tags)

        return report


class _Off(Report):
    """
    The Report of a Reporter without a DSN, or of none: failures are logged,
    nothing is sent.
    """

    def __init__(self, reporter, user=None, ip=None):
        self._reporter = reporter
        self.user = user
        self.address = ip
        self._faults = None

    def tag(self, key, value):
        pass

    def breadcrumb(self, category, message, level="info", **data):
        pass

    def capture(self, failure, message, extra=None, **tags):
        pass

    def capture_message(self, message, level="warning", extra=None, **tags):
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

    def __init__(self, dsn=None, environment="production", debug=False,
                 sample_rate=1.0, release=None, scrub=(), on_sent=None, on_withheld=None,
                 clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.enabled = bool(dsn)
        self._options = dict(
            dsn=dsn, environment=environment, debug=debug,
            traces_sampler=TraceBudget(sample_rate, TRACES_PER_SECOND),
            release=release or f"aleatoria@{__version__}",
            event_scrubber=_scrubber(),
            default_integrations=False,
            auto_enabling_integrations=False, before_send=self._before_send,
            before_send_transaction=self._before_send,
        )
        self._secrets = [s for s in scrub if s]
        self._on_sent = on_sent
        self.budget = ReportBudget(clock, on_withheld)
        self._reports = {}
        self.daemon = self.report_for()
        self._observer = _FailureObserver(self)

    def report_for(self, user=None, ip=None):
        """
        A fresh L{Report} with its own scope, for one connection -- the
        user's, until L{forget}: what happens to the user goes there.
        """
        report = (Report if self.enabled else _Off)(self, user, ip)
        if user is not None:
            self._reports[user] = report
        return report

    def report_of(self, user):
        """The report of C{user}'s connection, or (of none) the daemon's."""
        return self._reports.get(user, self.daemon)

    def forget(self, report):
        """C{report}'s connection is gone."""
        if self._reports.get(report.user) is report:
            del self._reports[report.user]

    def startService(self):
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

    def stopService(self):
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

    def capture(self, failure, message, tags=None, extra=None, report=None):
        """
        Report a C{Failure} or exception with its traceback; C{message} says
        what was being done. C{report}: whose scope (default: the daemon's).
        """
        if not self.enabled:
            return
        scope = self._scope_for(report, tags, {"message": message, **(extra or {})})
        sentry_sdk.capture_exception(_exc_info(failure), scope=scope)

    def capture_message(self, message, level="warning", tags=None, extra=None, report=None):
        """Report something that went wrong without an exception."""
        if not self.enabled:
            return
        scope = self._scope_for(report, tags, extra)
        sentry_sdk.capture_message(message, level=level, scope=scope)

    def _scope_for(self, report, tags, extra):
        """A copy of the report's scope, with this event's tags and extra data."""
        scope = (report or self.daemon).scope.fork()
        for key, value in (tags or {}).items():
            scope.set_tag(key, value)
        for key, value in (extra or {}).items():
            scope.set_extra(key, value)
        return scope

    # Tracing

    def trace(self, report, name):
        """A L{Trace} of handling one client message of type C{name}."""
        if not self.enabled:
            return NO_TRACE
        return Trace(sentry_sdk.start_transaction(op="websocket.message", name=name),
                     report.scope)

    # Privacy

    def _before_send(self, event, hint):
        event = _scrubbed(event, self._secrets)
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

    def __init__(self, reporter):
        self._reporter = reporter

    def __call__(self, event):
        failure = event.get("log_failure")
        if failure is None or event.get("reported"):
            return
        component = str(event.get("log_namespace", "unknown"))
        if self._reporter.budget.failure((component, failure.type.__name__, None)):
            self._reporter.capture(failure, event.get("log_format") or "logged failure",
                                   tags={"component": component})


def guarded(function, report, operation):
    """
    C{function}, made safe for a timer: an exception is logged and reported
    (tagged C{operation}) instead of stopping the timer that calls it.
    """
    log = Logger(namespace=f"aleatoria.{operation}")
    report = report or Reporter().daemon

    def call():
        try:
            return function()
        except Exception:
            report.failed(log, Failure(), f"{operation} failed",
                          operation=operation, component="timer")

    return call


def _exc_info(failure):
    """The exception info of a Failure (itself a BaseException in Twisted 26) or exception."""
    if isinstance(failure, Failure):
        return (failure.type, failure.value, failure.getTracebackObject())
    return (type(failure), failure, failure.__traceback__)


def _scrubber():
    """
    The SDK's scrubber, minus its rule against C{ip_address}: the user's
    address is context operators asked for, set by us, never sent by default.
    """
    from sentry_sdk.scrubber import DEFAULT_PII_DENYLIST, EventScrubber

    return EventScrubber(pii_denylist=[k for k in DEFAULT_PII_DENYLIST if k != "ip_address"])


def _scrubbed(value, secrets):
    """C{value} with secrets and token-like strings replaced, recursively."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _FILTERED)
        value = _JWT.sub(_FILTERED, value)
        return _TOKEN_PARAM.sub(r"\1" + _FILTERED, value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    return value
