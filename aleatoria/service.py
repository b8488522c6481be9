"""
Composition: one L{MultiService} holding the store's sweeper, the hub and
the listener, built from a L{aleatoria.config.Config}.

Children stop in reverse order: the listener first (no new clients), then
the hub (closes the clients with 1001), then the timers.
"""

from autobahn.twisted.resource import WebSocketResource
from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python.failure import Failure

from .clock import MessageClock
from .hub import Hub
from .protocol import ClientFactory, prepare
from .store.memory import MemoryStore
from .web import make_site

EXPIRY_SWEEP_SECONDS = 60


def make_service(config, reactor=None):
    if reactor is None:
        from twisted.internet import reactor

    top = MultiService()
    store = MemoryStore(
        reactor.seconds, config.message_ttl_hours * 3600, config.history_size
    )
    sweeper = TimerService(EXPIRY_SWEEP_SECONDS, store.expire)
    sweeper.clock = reactor
    sweeper.setServiceParent(top)

    hub = Hub(store, prepare, MessageClock(), reactor)
    hub.setName("hub")
    hub.setServiceParent(top)

    factory = ClientFactory(hub, config, reactor)
    site = make_site(WebSocketResource(factory), hub, store, reactor)
    listener = Listener(config.port, site, reactor)
    listener.setName("listener")
    listener.setServiceParent(top)
    return top


class Listener(Service):
    """
    Listens on an endpoint description. Unlike a bare
    C{StreamServerEndpointService}, which logs a busy port and runs on deaf,
    a port that cannot be bound ends start-up with one clear line and exit
    status 1. It binds in C{privilegedStartService}, before twistd drops
    privileges, and keeps the L{IListeningPort} as C{port}.
    """

    _log = Logger()
    port = None

    def __init__(self, description, factory, reactor):
        self.description = description
        self._endpoint = endpoints.serverFromString(reactor, description)
        self._factory = factory

    def privilegedStartService(self):
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        if self.port is None:
            self._listen()

    def _listen(self):
        outcome = []
        self._endpoint.listen(self._factory).addBoth(outcome.append)
        if not outcome:
            raise SystemExit(f"aleatoria: {self.description} did not start listening")
        if isinstance(outcome[0], Failure):
            raise SystemExit(
                f"aleatoria: cannot listen on {self.description}: "
                f"{outcome[0].getErrorMessage()}"
            )
        self.port = outcome[0]
        self._log.info("Listening on {address}", address=self.port.getHost())

    def stopService(self):
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
