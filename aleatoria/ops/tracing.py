"""
Tracing client messages as Sentry transactions, store calls as their
spans -- within a budget, so that traces never crowd out errors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred

from aleatoria.domain.limits import Seconds, TokenBucket

if TYPE_CHECKING:
    from sentry_sdk import Scope
    from sentry_sdk.tracing import Span

_T = TypeVar("_T")

TRACES_PER_SECOND = 10
"""
A cap on transactions per daemon: the SDK's send queue holds 100 items and
drops what does not fit, and a flood of traces must never crowd out errors.
"""


class Trace:
    """
    One transaction; store calls are its spans. It finishes when the handler
    has returned and the last span has ended.
    """

    def __init__(self, transaction: Span, scope: Scope) -> None:
        self._transaction = transaction
        self._scope = scope
        self._open = 1

    def span(self, operation: str, d: Deferred[Any]) -> None:
        """Time the Deferred C{d} as a span named C{operation}."""
        span = self._transaction.start_child(op="store", name=operation)
        self._open += 1

        def ended(result: _T) -> _T:
            span.finish()
            self._close()
            return result

        d.addBoth(ended)

    def handled(self) -> None:
        self._close()

    def _close(self) -> None:
        self._open -= 1
        if self._open == 0:
            self._transaction.finish(scope=self._scope)


class TraceBudget:
    """
    Sample a share C{rate} of messages, but at most C{per_second} a second
    (a token bucket), whatever the traffic.
    """

    def __init__(self, rate: float, per_second: float, now: Seconds = time.monotonic,
                 rng: Callable[[], float] = random.random) -> None:
        self._rate = rate
        self._bucket = TokenBucket(per_second, per_second, now)
        self._rng = rng

    def __call__(self, sampling_context: object) -> float:
        if self._rng() >= self._rate or self._bucket.delay():
            return 0.0
        return 1.0


class _NoTrace:
    def span(self, operation: str, d: Deferred[Any]) -> None:
        pass

    def handled(self) -> None:
        pass


NO_TRACE = _NoTrace()
