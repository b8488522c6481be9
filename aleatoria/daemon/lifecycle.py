"""
The daemon's life: its services stopped in order under one deadline
(L{InOrder}), and the ports it listens on (L{Listener}).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

Reactor = Any
"""
The global reactor, as the assembly hands it on: Twisted gives it no one
interface that says all it does (time, TCP, TLS, processes, triggers).
"""


class InOrder(MultiService):
    """
    Stops its children one at a time, in reverse order, each once the one
    before has finished (a C{MultiService} stops them all at once) -- all
    within C{deadline} seconds, past which the rest are stopped without
    being waited for. The children named in C{untimed} (the reporter, whose
    flush has its own limit) are waited for in any case.
    """

    _log = Logger()

    def __init__(self, reactor: IReactorTime, deadline: float,
                 untimed: Container[str] = ()) -> None:
        super().__init__()
        self._reactor = reactor
        self._deadline = deadline
        self._untimed = untimed

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop_in_order())

    async def _stop_in_order(self) -> None:
        end = self._reactor.seconds() + self._deadline
        for child in reversed(list(self)):
            stopping = maybeDeferred(child.stopService)
            if child.name in self._untimed:
                await _finished(stopping, None, self._log, child.name)
                continue
            left = max(0.0, end - self._reactor.seconds())
            if not await _finished(stopping, (left, self._reactor), self._log, child.name):
                self._log.warn(
                    "Shutdown deadline ({seconds}s) passed while stopping the {name}",
                    seconds=self._deadline, name=child.name or child,
                )


def _finished(d: Deferred[object], limit: tuple[float, IReactorTime] | None, log: Logger,
              name: str | None) -> Deferred[bool]:
    """
    Fire with whether C{d} finished within C{limit} (seconds, reactor),
    without cancelling it; its failure is logged, not passed on.
    """
    outcome: Deferred[bool] = Deferred()
    timer: IDelayedCall | None = None
    if limit is not None:
        seconds, reactor = limit
        timer = reactor.callLater(seconds, outcome.callback, False)

    def done(result: object) -> None:
        if isinstance(result, Failure):
            log.failure("Stopping the {name} failed", result, name=name)
        if timer is not None and timer.active():
            timer.cancel()
        if not outcome.called:
            outcome.callback(True)

    d.addBoth(done)
    return outcome


LISTEN_BACKLOG = 1024


def with_backlog(description: str) -> str:
    """
    C{description}, listening with a backlog of L{LISTEN_BACKLOG} unless it
    names one. Twisted's default is 50: clients reconnecting at once (after
    a restart, a network blip) overflow it, and each connection attempt the
    kernel drops costs its client a second before it tries again.
    """
    kind = description.split(":", 1)[0]
    if kind in ("tcp", "tcp6", "ssl", "unix") and "backlog=" not in description:
        return f"{description}:backlog={LISTEN_BACKLOG}"
    return description


def _where(address: IAddress) -> str:
    """C{host:port}, C{[v6 host]:port}, or what the address says of itself."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        return str(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Listener(Service):
    """
    Listens on an endpoint description. Unlike a bare
    C{StreamServerEndpointService}, which logs a busy port and runs on deaf,
    a port that cannot be bound ends start-up with one clear line and exit
    status 1. It binds in C{privilegedStartService}, before twistd drops
    privileges, and keeps the C{IListeningPort} as C{port}.
    """

    _log = Logger()
    port: IListeningPort | None = None

    def __init__(self, description: str, factory: IProtocolFactory, reactor: Reactor,
                 endpoint: IStreamServerEndpoint | None = None) -> None:
        self.description = description
        self._endpoint = endpoint or endpoints.serverFromString(
            reactor, with_backlog(description))
        self.factory = factory

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if self.port is None:
            self._listen()

    def _listen(self) -> None:
        outcome: list[IListeningPort | Failure] = []
        self._endpoint.listen(self.factory).addBoth(outcome.append)
        if not outcome:
            raise SystemExit(f"aleatoria: {self.description} did not start listening")
        if isinstance(outcome[0], Failure):
            raise SystemExit(
                f"aleatoria: cannot listen on {self.description}: "
                f"{outcome[0].getErrorMessage()}"
            )
        self.port = outcome[0]
        self._log.info("Listening on {address}", address=_where(self.port.getHost()))

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
