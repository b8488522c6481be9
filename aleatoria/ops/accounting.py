"""
What the domain's calls to its backend cost and how they fail: each call
timed (a histogram, and a span of the trace of the client message that
caused it), each unexpected failure reported in the name of the user
whose request it served -- within the reporting budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria.domain.ports import IAccounting
from aleatoria.ops.metrics import Metrics
from aleatoria.ops.tracing import Trace, _NoTrace

if TYPE_CHECKING:
    from aleatoria.ops.reporting import Reporter


@implementer(IAccounting)
class Accounting:
    """
    @param reporter: the L{aleatoria.ops.reporting.Reporter}.
    @param metrics: the L{aleatoria.ops.metrics.Metrics}.
    @param backend: the backend's name (C{memory}, C{redis}), for the
        operations reported.
    """

    _log = Logger(namespace="aleatoria.domain.hub.Hub")

    def __init__(self, reporter: Reporter, metrics: Metrics, backend: str) -> None:
        self._reporter = reporter
        self._metrics = metrics
        self._backend = backend
        self.trace: Trace | _NoTrace | None = None
        """The trace of the client message being handled, if any (set by the router)."""

    def timed(self, d: Deferred[Any], operation: str) -> None:
        self._metrics.time_store(operation, d)
        if self.trace is not None:
            self.trace.span(operation, d)

    def failed(self, failure: Failure, operation: str, user: str | None = None) -> None:
        self._reporter.report_of(user).failed(
            self._log, failure, f"Store operation {operation} failed",
            operation=f"{self._backend}_{operation}", component="store",
        )
