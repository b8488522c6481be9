"""
The workers' supervisor (L{aleatoria.daemon.workers.Workers}) on a fake
clock, its processes stood in for: what it does when shutdown begins.
"""

import signal

from twisted.internet.error import ProcessTerminated
from twisted.internet.interfaces import IProcessTransport, IReactorProcess
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from aleatoria.daemon.workers import Workers


@implementer(IProcessTransport)
class _Process:
    """A worker process as its supervisor holds it: its pid, and the signals it was sent."""

    def __init__(self, pid):
        self.pid = pid
        self.signals = []

    def signalProcess(self, name):
        self.signals.append(name)

    def closeStdin(self):
        pass

    def closeStdout(self):
        pass

    def closeStderr(self):
        pass

    def closeChildFD(self, descriptor):
        pass

    def writeToChild(self, childFD, data):
        pass

    def write(self, data):
        pass

    def writeSequence(self, data):
        pass

    def loseConnection(self):
        pass

    def getPeer(self):
        return None

    def getHost(self):
        return None


@implementer(IReactorProcess)
class _Reactor(MemoryReactorClock):
    """A fake clock that records the processes spawned on it."""

    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, processProtocol, executable, args, env=None, path=None, uid=None,
                     gid=None, usePTY=False, childFDs=None):
        process = _Process(1000 + len(self.spawned))
        self.spawned.append((processProtocol, process))
        return process


class _Port:
    def fileno(self):
        return 7


def test_a_worker_that_ends_as_told_at_shutdown_is_stopped_not_restarted():
    """
    Shutdown tells the workers to stop before the supervisor itself is
    stopped; a worker quick to obey ends in between. That is a stop: no
    "ended unexpectedly" line, and no worker started again, however long
    the rest of shutdown takes.
    """
    reactor = _Reactor()
    workers = Workers(2, _Port, [], reactor)
    workers.startService()
    (protocol, process), = reactor.spawned
    with capturedLogs() as events:
        for trigger, args, kwargs in reactor.triggers["before"]["shutdown"]:
            trigger(*args, **kwargs)
        assert process.signals == ["TERM"]
        protocol.processEnded(Failure(ProcessTerminated(signal=signal.SIGTERM)))
        reactor.advance(30)
    assert [e["log_format"] for e in events] == ["Worker {index} stopped"]
    assert len(reactor.spawned) == 1
    stopped = []
    workers.stopService().addCallback(stopped.append)
    assert stopped


def test_a_worker_that_dies_while_serving_is_started_again():
    reactor = _Reactor()
    workers = Workers(2, _Port, [], reactor)
    workers.startService()
    (protocol, _), = reactor.spawned
    with capturedLogs() as events:
        protocol.processEnded(Failure(ProcessTerminated(signal=signal.SIGKILL)))
        reactor.advance(1)
    assert events[0]["log_format"].startswith("Worker {index} ended unexpectedly")
    assert len(reactor.spawned) == 2
    workers.stopService()


def test_the_fakes_provide_their_interfaces():
    assert verifyObject(IProcessTransport, _Process(1))
    assert verifyObject(IReactorProcess, _Reactor())
