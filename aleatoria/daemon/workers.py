"""
Every core of the host: C{--workers N} runs N processes on one listening
socket and one Redis, several daemons as one.

The main process listens, serves as worker 0, and starts workers 1..N-1,
each a C{twistd aleatoria} with the same options and environment, handed
the listening socket's descriptor (the kernel then gives each new
connection to whichever worker accepts it first). Each worker is a whole
daemon with its own node id: users on different workers reach each other
through Redis, as they would on different hosts.

The main process starts a worker again when it dies, and stops them all
when it stops; a worker whose main process is gone stops by itself.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.application.internet import TimerService
from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProcessTransport,
    IReactorSocket,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria.daemon.lifecycle import Reactor

if TYPE_CHECKING:
    from aleatoria.daemon.config import Config

WORKER_VARIABLE = "ALEATORIA_WORKER"
"""Set by the main process for each worker it starts: C{index:descriptor}."""

ANONYMOUS_SECRET_VARIABLE = "ALEATORIA_ANONYMOUS_SECRET"
"""Where a worker finds the key of anonymous tokens, as the main process has it."""

RESTART_DELAYS = (1, 2, 5, 10, 30)
"""Seconds before a dead worker is started again, growing while it keeps dying."""

STEADY_SECONDS = 60
"""A worker up this long has its restart delay reset to the first."""

ORPHAN_CHECK_SECONDS = 1

_log = Logger()


@dataclass(frozen=True)
class Worker:
    """Which worker this process is, and the listening socket it serves."""

    index: int
    descriptor: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Worker | None:
        """The worker the environment names, or C{None} in the main process."""
        value = environ.get(WORKER_VARIABLE)
        if not value:
            return None
        index, descriptor = value.split(":")
        return cls(int(index), int(descriptor))

    def endpoint(self, reactor: IReactorSocket) -> endpoints.AdoptedStreamServerEndpoint:
        """The inherited listening socket, of the family it is."""
        inherited = socket.socket(fileno=self.descriptor)
        try:
            family = inherited.family
        finally:
            inherited.detach()
        return endpoints.AdoptedStreamServerEndpoint(reactor, self.descriptor, family)


def metrics_port(description: str, index: int) -> str:
    """
    Worker C{index}'s metrics endpoint: C{--metrics-port} moved up by
    C{index} (9100, 9101, ...), so that each worker can be scraped.
    """
    kind, _, rest = description.partition(":")
    if kind.isdigit():
        return str(int(kind) + index)
    if kind not in ("tcp", "tcp6", "ssl"):
        raise ValueError(f"--metrics-port={description!r} cannot be numbered per worker")
    number, _, options = rest.partition(":")
    if number.startswith("port="):
        number = number[len("port="):]
    return f"{kind}:{int(number) + index}" + (f":{options}" if options else "")


def shared_environment(config: Config) -> dict[str, str]:
    """
    What the main process hands its workers beyond its own environment:
    the key of anonymous tokens, which it may have made itself
    (L{aleatoria.edge.auth.with_anonymous_key}); each worker would otherwise
    make its own, and refuse the others' tokens.
    """
    if config.anonymous:
        return {ANONYMOUS_SECRET_VARIABLE: config.anonymous_secret}
    return {}


class Workers(Service):
    """
    Starts workers 1..C{count}-1 on the listening port C{port()} returns
    (once the daemon listens), keeps them running, and stops them with the daemon: they are
    told (SIGTERM) as soon as shutdown begins, and closing their clients
    goes on beside the main process's own; the daemon exits when the last
    has ended. Each worker's environment is the main process's, with
    C{environment} added.
    """

    def __init__(self, count: int, port: Callable[[], IListeningPort | None],
                 arguments: Sequence[str], reactor: Reactor,
                 environment: Mapping[str, str] | None = None) -> None:
        self._indexes = range(1, count)
        self._environment = environment or {}
        self._port = port
        self._arguments = arguments
        self._reactor = reactor
        self._running: dict[int, IProcessTransport] = {}
        self._delays: dict[int, Iterator[int]] = {}
        self._ended: dict[int, Deferred[None]] = {}
        self._timers: list[IDelayedCall] = []
        self._stopping = False
        """Shutdown began: the workers were told to stop, and none is started again."""

    def startService(self) -> None:
        super().startService()
        self._reactor.addSystemEventTrigger("before", "shutdown", self._terminate)
        for index in self._indexes:
            self._start(index)

    def _start(self, index: int) -> None:
        # listening by then, on a TCP port: it has a descriptor
        descriptor = self._port().fileno()  # type: ignore[union-attr]
        environment = dict(os.environ, **self._environment,
                           **{WORKER_VARIABLE: f"{index}:{descriptor}"})
        command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                   "--nodaemon", "--pidfile=", "aleatoria", *self._arguments]
        process = self._reactor.spawnProcess(
            _Watched(self, index), sys.executable, command, env=environment,
            childFDs={0: 0, 1: 1, 2: 2, descriptor: descriptor},
        )
        self._running[index] = process
        self._ended[index] = Deferred()
        self._steady_later(index)
        _log.info("Started worker {index} (pid {pid})", index=index, pid=process.pid)

    def _steady_later(self, index: int) -> None:
        def steady() -> None:
            if index in self._running:
                self._delays.pop(index, None)

        self._later(STEADY_SECONDS, steady)

    def _later(self, delay: float, function: Callable[..., object], *args: object) -> None:
        """A timer that stopping the service cancels."""
        self._timers = [timer for timer in self._timers if timer.active()]
        self._timers.append(self._reactor.callLater(delay, function, *args))

    def ended(self, index: int, reason: Failure) -> None:
        self._running.pop(index, None)
        ended = self._ended.pop(index)
        # told to stop (SIGTERM at the start of shutdown), a worker may end
        # before this service is stopped: that is a stop, not a crash
        if self._stopping or not self.running:
            _log.info("Worker {index} stopped", index=index)
            ended.callback(None)
            return
        delays = self._delays.setdefault(index, iter(RESTART_DELAYS))
        delay = next(delays, RESTART_DELAYS[-1])
        _log.error(
            "Worker {index} ended unexpectedly ({why}); starting it again in {delay} s",
            index=index, why=reason.getErrorMessage(), delay=delay,
        )
        ended.callback(None)
        self._later(delay, self._restart, index)

    def _restart(self, index: int) -> None:
        if self.running and not self._stopping and index not in self._running:
            self._start(index)

    def _terminate(self) -> None:
        """Shutdown began: every worker stops too, closing its own clients."""
        self._stopping = True
        for process in self._running.values():
            process.signalProcess("TERM")

    def stopService(self) -> Deferred[list[tuple[bool, None]]]:
        super().stopService()
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        return DeferredList(list(self._ended.values()))


class _Watched(ProcessProtocol):
    def __init__(self, workers: Workers, index: int) -> None:
        self._workers = workers
        self._index = index

    def processEnded(self, reason: Failure) -> None:
        self._workers.ended(self._index, reason)


def orphan_watch(reactor: Reactor) -> TimerService:
    """
    A worker's timer: when its main process is gone (killed, not stopped),
    the worker stops too, rather than serving on with nobody to restart it.
    """
    parent = os.getppid()

    def check() -> None:
        if os.getppid() != parent and reactor.running:
            _log.warn("The main process is gone: this worker stops")
            reactor.stop()

    service = TimerService(ORPHAN_CHECK_SECONDS, check)
    service.clock = reactor
    return service
