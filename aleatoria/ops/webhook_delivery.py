"""
Delivering webhooks to one URL, at least once, never blocking the reactor.

Each URL has its own L{Endpoint}: a bounded queue, a few requests in
flight, each with a timeout. A failed attempt (no connection, a timeout,
an answer other than 2xx) sends the message to the back of the queue and
makes the endpoint back off -- half a second, doubling up to five minutes
-- sending one request at a time until one succeeds: an endpoint that is
down gets one request per wait, not one per event. A message is dropped
once its time (C{--webhook-retry-hours}) is up, or when the queue is full
as it is made; what happens is told to an L{aleatoria.ops.webhooks.Outcomes}.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from types import ModuleType
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from aleatoria.ops.webhook_signing import Signer

if TYPE_CHECKING:
    from aleatoria.ops.webhooks import Outcomes

REQUEST_SECONDS = 10.0
"""How long one attempt may take, connecting and reading the answer included."""
IN_FLIGHT = 4
"""Requests under way to one URL at once (one while it fails)."""
FIRST_WAIT = 0.5
LONGEST_WAIT = 300.0
"""Seconds an endpoint that failed waits before the next attempt: doubling from the first."""
SHUTDOWN_SECONDS = 2.0
"""How long a stopping daemon keeps sending what is queued; the rest is dropped."""


@dataclass(eq=False)
class Message:
    """One webhook: its id, its type, its JSON body, and when it is too late (reactor seconds)."""

    id: str
    kind: str
    body: bytes
    expires: float


class Post:
    """
    Signed POSTs through one Agent and its pool of kept-alive connections;
    fires with the status code once the answer is read.

    @param signer: an L{aleatoria.ops.webhook_signing.Signer}.
    """

    def __init__(self, reactor: IReactorTime, signer: Signer) -> None:
        self._reactor = reactor
        self._signer = signer
        self._pool = HTTPConnectionPool(reactor)
        self._pool.maxPersistentPerHost = IN_FLIGHT
        self._agent = Agent(reactor, pool=self._pool, connectTimeout=REQUEST_SECONDS)

    def __call__(self, url: bytes, message: Message) -> Deferred[int]:
        headers = Headers(self._signer.headers(message.id, self._reactor.seconds(), message.body))
        d: Deferred[Any] = self._agent.request(  # chained in place
            b"POST", url, headers, FileBodyProducer(BytesIO(message.body)))
        d.addCallback(_read)
        return d.addTimeout(REQUEST_SECONDS, self._reactor)

    def close(self) -> Deferred[None]:
        return self._pool.closeCachedConnections()


def _read(response: IResponse) -> Deferred[int]:
    """The status code, once the body (thrown away) is read: the connection is then reused."""
    drain = _Drain(response.code)
    response.deliverBody(drain)
    return drain.done


class _Drain(Protocol):
    def __init__(self, code: int) -> None:
        self._code = code
        self.done: Deferred[int] = Deferred(self._cancel)

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(self._code)

    def _cancel(self, d: Deferred[int]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]  # a producer, as deliverBody gives


class Endpoint:
    """
    One URL's queue and sending.

    @param url: the URL (text).
    @param post: C{(url bytes, Message) -> Deferred} firing with a status code.
    @param clock: the reactor (C{seconds}, C{callLater}).
    @param capacity: messages that may wait here, those in flight included.
    @param outcomes: told what became of each message.
    """

    def __init__(self, url: str, post: Callable[[bytes, Message], Deferred[int]],
                 clock: IReactorTime, capacity: int, outcomes: Outcomes,
                 rng: random.Random | ModuleType = random) -> None:
        self.url = url
        self._target = url.encode()
        self._post = post
        self._clock = clock
        self._capacity = capacity
        self._outcomes = outcomes
        self._rng = rng
        self._ready: deque[Message] = deque()
        self._flying: dict[Deferred[int], Message] = {}
        self.failures = 0
        """Attempts that failed in a row."""
        self._resume: IDelayedCall | None = None
        self._idle: Deferred[None] | None = None

    def __len__(self) -> int:
        return len(self._ready) + len(self._flying)

    def send(self, message: Message) -> None:
        """Queue C{message}, or drop it if the queue is full (or the daemon is stopping)."""
        if self._idle is not None:
            self._outcomes.dropped(self, message, "shutdown")
        elif len(self) >= self._capacity:
            self._outcomes.dropped(self, message, "queue_full")
        else:
            self._ready.append(message)
            self._pump()

    def _pump(self) -> None:
        limit = 1 if self.failures else IN_FLIGHT
        now = self._clock.seconds()
        while self._ready and self._resume is None and len(self._flying) < limit:
            message = self._ready.popleft()
            if message.expires <= now:
                self._outcomes.dropped(self, message, "expired")
                continue
            d = maybeDeferred(self._post, self._target, message)
            self._flying[d] = message
            d.addBoth(self._answered, d)
        if self._idle is not None and not self and not self._idle.called:
            self._idle.callback(None)

    def _answered(self, outcome: int | Failure, d: Deferred[int]) -> None:
        message = self._flying.pop(d)
        if not isinstance(outcome, Failure) and 200 <= outcome < 300:
            if self.failures:
                self._outcomes.recovered(self, self.failures)
                self.failures = 0
            self._outcomes.delivered(self, message)
        elif self._idle is not None:
            self._outcomes.dropped(self, message, "shutdown")
        else:
            self.failures += 1
            self._outcomes.failed(self, message, _why(outcome))
            self._ready.append(message)
            if self._resume is None:
                self._resume = self._clock.callLater(self._wait(), self._resumed)
        self._pump()

    def _wait(self) -> float:
        longest = min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(self.failures - 1, 20))
        return longest * self._rng.uniform(0.75, 1.0)

    def _resumed(self) -> None:
        self._resume = None
        now = self._clock.seconds()
        for message in [m for m in self._ready if m.expires <= now]:
            self._ready.remove(message)
            self._outcomes.dropped(self, message, "expired")
        self._pump()

    def stop(self) -> Deferred[object]:
        """
        Send what is queued for up to L{SHUTDOWN_SECONDS} (nothing more
        while the endpoint fails); then drop what is left. Fires when done.
        """
        self._idle = Deferred()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.failures:
            self._abandon()
        self._pump()
        if self._idle.called:
            return succeed(None)
        timer = self._clock.callLater(SHUTDOWN_SECONDS, self._abandon)
        return self._idle.addBoth(  # type: ignore[call-overload]  # fires with what cancel gives
            lambda _: timer.active() and timer.cancel())  # type: ignore[func-returns-value]

    def _abandon(self) -> None:
        while self._ready:
            self._outcomes.dropped(self, self._ready.popleft(), "shutdown")
        for d in list(self._flying):
            d.cancel()


def _why(outcome: int | Failure) -> str:
    """A failed attempt, in a few words."""
    if not isinstance(outcome, Failure):
        return f"HTTP {outcome}"
    if outcome.check(TimeoutError):
        return f"no answer within {REQUEST_SECONDS:.0f} s"
    return outcome.getErrorMessage() or outcome.type.__name__  # type: ignore[union-attr]  # of an exception
