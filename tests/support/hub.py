"""
The hub without a network: connections that record what they are sent
(envelopes, rendered as the wire has them, not framed), on an embedded
backend, a fake clock where a test wants one.
"""

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.clock import MessageClock
from aleatoria.domain.hub import Hub, Rules
from aleatoria.domain.ports import IConnection
from aleatoria.edge.render import Outlet
from aleatoria.edge.router import Router
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.accounting import Accounting
from aleatoria.ops.metrics import Metrics
from aleatoria.ops.reporting import Reporter


@implementer(IConnection)
class Recorder:
    """A connection that keeps what the hub sends it."""

    def __init__(self, user, address=None):
        self.user_id = user
        self.segment = "default"
        self.address = address or f"test:{user}"
        self.report = Reporter().report_for(user)
        self.sent = []
        self.closed = None

    def may_join(self, room):
        return True

    def write(self, envelope):
        self.sent.append(envelope)

    def budget_refills_in(self):
        return 0

    def spent_elsewhere(self, seconds):
        pass

    def charge(self, messages):
        pass

    def writable(self):
        return succeed(None)

    def holding(self, count):
        pass

    def replaced(self):
        self.closed = "replaced"

    def going_away(self):
        self.closed = "going away"

    def kick(self, reason):
        self.closed = reason

    def kinds(self):
        return [m.type for m in self.sent]

    def take(self):
        sent, self.sent = self.sent, []
        return sent


class SlowReader(Recorder):
    """
    A connection whose transport takes one more message only when the test
    says so (L{read}): a client that reads slowly, or not at all.
    """

    def __init__(self, user):
        super().__init__(user)
        self.waiting = None

    def writable(self):
        self.waiting = Deferred()
        return self.waiting

    def read(self):
        """The client reads what was written: the transport takes one more."""
        waiting, self.waiting = self.waiting, None
        waiting.callback(None)


def make_hub(clock, backend=None, *, prepare=lambda envelope: envelope, metrics=None,
             rules=None, message_clock=None):
    """
    A started hub on C{backend} (the embedded one by default), its router
    as C{hub.router}: the protocol's way in (L{received}).
    """
    backend = backend or MemoryBackend(clock, 3600, 100)
    metrics = metrics or Metrics()
    reporter = Reporter()
    message_clock = message_clock or MessageClock()
    outlet = Outlet(prepare, message_clock, metrics)
    accounting = Accounting(reporter, metrics, backend.kind)
    hub = Hub(backend, outlet, message_clock, accounting, rules=rules or Rules())
    hub.router = Router(hub, outlet, reporter, accounting, metrics)
    hub.backend = backend
    hub.startService()
    return hub


def received(hub, conn, envelope):
    """What the protocol does with a decoded message: route it to the hub."""
    hub.router.received(conn, envelope)


def connect(hub, *users, room="home"):
    conns = [Recorder(user) for user in users]
    for conn in conns:
        hub.connected(conn, f"{room}-{conn.user_id}")
    return conns
