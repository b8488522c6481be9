"""
Composition: one L{MultiService} holding the reporter, the store, the
cluster, the hub and the listener, built from a L{aleatoria.config.Config}.

Children stop in reverse order: the listener first (no new clients), then
the hub (closes the clients with 1001, which cleans the store), then the
store, and last the reporter, which flushes what all of them reported.
"""

from autobahn.twisted.resource import WebSocketResource
from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import endpoints, ssl
from twisted.logger import Logger
from twisted.python.failure import Failure

from .clock import MessageClock
from .cluster import LoneDaemon, RedisCluster
from .hub import Hub
from .metrics import Metrics
from .protocol import ClientFactory, prepare
from .reporting import Reporter
from .store.memory import MemoryStore
from .store.redis import RedisStore
from .web import make_site


def make_service(config, reactor=None):
    if reactor is None:
        from twisted.internet import reactor

    top = MultiService()
    metrics = Metrics()
    reporter = Reporter(
        dsn=config.sentry_dsn or None, environment=config.sentry_env,
        debug=config.sentry_debug, sample_rate=config.sentry_sample_rate,
        release=config.sentry_release or None,
        scrub=[config.redis_password, config.jwt_secret],
        on_sent=lambda kind: metrics.sentry_events.labels(kind).inc(),
    )
    reporter.setName("reporter")
    reporter.setServiceParent(top)

    store = make_store(config, reactor, reporter.daemon)
    store.setName("store")
    store.setServiceParent(top)

    cluster = LoneDaemon()
    if config.store == "redis":
        cluster = RedisCluster(
            store, _redis_endpoint(config, reactor), reactor, reporter.daemon,
            username=config.redis_username, password=config.redis_password,
            reap_interval=config.node_ttl,
        )
        cluster.setName("cluster")
        cluster.setServiceParent(top)

    hub = Hub(store, prepare, MessageClock(), reactor, cluster, reporter, metrics,
              max_content=config.max_content_length, max_rooms=config.max_rooms)
    hub.setName("hub")
    hub.setServiceParent(top)
    cluster.receiver = hub
    store.on_connect = hub.resync
    if config.store == "redis":
        # Self-healing: a release lost to a timeout or an outage is made good
        # within one heartbeat period, on top of the resync at every reconnect.
        resync = TimerService(config.node_ttl, hub.resync)
        resync.clock = reactor
        resync.setServiceParent(top)
    metrics.watch_hub(hub)
    metrics.pool_refresher(store, reactor).setServiceParent(top)

    factory = ClientFactory(hub, config, reactor, reporter)
    site = make_site(WebSocketResource(factory), hub, store, metrics, reactor,
                     config.handshake_timeout)
    listener = Listener(config.port, site, reactor)
    listener.setName("listener")
    listener.setServiceParent(top)
    return top


def make_store(config, reactor, report=None):
    """
    The configured store, as a service to start and stop with the daemon;
    C{report} (the daemon's L{Report}) hears of its troubles.
    """
    ttl = config.message_ttl_hours * 3600
    if config.store == "memory":
        return MemoryStore(reactor, ttl, config.history_size, report=report)
    return RedisStore(
        _redis_endpoint(config, reactor), f"{config.redis_host}:{config.redis_port}", reactor,
        ttl=ttl, history_size=config.history_size, prefix=config.redis_prefix,
        username=config.redis_username, password=config.redis_password,
        db=config.redis_db, timeout=config.redis_timeout, node_ttl=config.node_ttl,
        report=report,
    )


def _redis_endpoint(config, reactor):
    """Where Redis is: TLS-wrapped, verifying host name and certificate, if asked."""
    endpoint = endpoints.HostnameEndpoint(reactor, config.redis_host, config.redis_port)
    if not config.redis_tls:
        return endpoint
    trust = None
    if config.redis_ca_file:
        with open(config.redis_ca_file, "rb") as pem:
            trust = ssl.Certificate.loadPEM(pem.read())
    options = ssl.optionsForClientTLS(config.redis_host, trustRoot=trust)
    return endpoints.wrapClientTLS(options, endpoint)


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
