"""
Composition: one L{InOrder} service holding the reporter, the store, the
peers, the hub and the listener, built from a L{aleatoria.config.Config}.
This is the one module that knows every part; the parts know only the
interfaces of L{aleatoria.interfaces}.

Children stop one after another, in reverse order, under one deadline: the
listener first (no new clients), then the hub (closes the clients with
1001 and releases their sessions, then leaves the other daemons), the
peers (stop beating, unsubscribe), the store, and last the reporter, which
flushes what all of them reported.
"""

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints, ssl
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria import __version__
from aleatoria.daemon.workers import Workers, metrics_port, orphan_watch, shared_environment
from aleatoria.domain.clock import MessageClock
from aleatoria.domain.hub import Hub
from aleatoria.domain.limits import KeyedBuckets, Quotas, Shares
from aleatoria.domain.rooms import RoomQuota
from aleatoria.edge.auth import with_anonymous_key
from aleatoria.edge.gate import Gate
from aleatoria.edge.protocol import ClientFactory, prepare
from aleatoria.http.api import ServerAPI
from aleatoria.http.site import WebSocketEndpoint, api_site, make_site, metrics_site
from aleatoria.memory.bus import LonePeers
from aleatoria.memory.store import MemoryStore
from aleatoria.ops.metrics import Metrics
from aleatoria.ops.reporting import Reporter
from aleatoria.redis.peers import RedisPeers
from aleatoria.redis.store import RedisStore

_log = Logger()


def make_service(config, reactor=None, worker=None, arguments=()):
    """
    The daemon. In a worker started by another (C{worker}, a L{Worker}) it
    serves the socket it was handed; with C{config.workers} above 1 the
    main process starts the others, with the command-line C{arguments} it
    was given.
    """
    if reactor is None:
        from twisted.internet import reactor

    if worker is None:
        announce(config)
        config = with_anonymous_key(config)
    top = InOrder(reactor, config.shutdown_timeout, untimed=("reporter",))
    index = worker.index if worker else (0 if config.workers > 1 else None)
    metrics = Metrics(worker=index)
    reporter = Reporter(
        dsn=config.sentry_dsn or None, environment=config.sentry_env,
        debug=config.sentry_debug, sample_rate=config.sentry_sample_rate,
        release=config.sentry_release or None,
        scrub=[config.redis_password, config.jwt_secret, config.anonymous_secret,
               config.api_token],
        on_sent=lambda kind: metrics.sentry_events.labels(kind).inc(),
        on_withheld=lambda operation: metrics.reports_withheld.labels(operation).inc(),
        clock=reactor,
    )
    reporter.setName("reporter")
    reporter.setServiceParent(top)
    if worker is not None:
        orphan_watch(reactor).setServiceParent(top)
    if worker is None and config.workers > 1:
        # stopped after the main process's own clients are closed (the
        # workers close theirs meanwhile, told as shutdown begins); they
        # serve the socket the listener, made below, listens on
        workers = Workers(config.workers, lambda: listener.port, arguments, reactor,
                          shared_environment(config))
        workers.setName("workers")
        workers.setServiceParent(top)

    store = make_store(config, reactor, reporter.daemon)
    store.setName("store")
    store.setServiceParent(top)

    peers = LonePeers(store)
    if config.store == "redis":
        peers = RedisPeers(store, _redis_link(config, reactor), reactor, reporter.daemon,
                           node_ttl=config.node_ttl)
        peers.setName("peers")
        peers.setServiceParent(top)

    hub = Hub(store, prepare, MessageClock(), peers, reporter=reporter,
              metrics=metrics, max_content=config.max_content_length,
              max_rooms=config.max_rooms, presence_limit=config.presence_limit,
              signaling=config.signaling,
              quotas=quotas(config, reactor.seconds),
              room_quota=RoomQuota(config.max_rooms_total, config.max_room_members,
                                   config.max_rooms_per_address))
    hub.setName("hub")
    hub.setServiceParent(top)
    metrics.watch_hub(hub)
    metrics.watch_store(store)
    metrics.pool_refresher(store, reactor).setServiceParent(top)

    attempts = KeyedBuckets(config.connect_rate, config.connect_burst, reactor.seconds)
    factory = ClientFactory(hub, config, reactor, reporter, metrics, attempts)
    gate = Gate(maximum=config.max_connections_per_ip, trusted=config.trusted_proxy,
                deadline=config.handshake_timeout, clock=reactor, attempts=attempts)
    apart = bool(config.metrics_port)
    site = make_site(WebSocketEndpoint(factory), hub, store, peers,
                     None if apart else metrics, reactor, config.handshake_timeout, gate,
                     demo=config.demo)
    if apart:
        where = config.metrics_port if index is None else metrics_port(config.metrics_port, index)
        metrics_gate = _http_gate(config, reactor, config.connect_rate, config.connect_burst,
                                  "complete request")
        monitoring = Listener(
            where, metrics_site(metrics, reactor, metrics_gate, config.handshake_timeout),
            reactor)
        monitoring.setName("metrics-listener")
        monitoring.setServiceParent(top)
    if config.api_port and worker is None:
        server_api = ServerAPI(
            hub.admin, config.api_token,
            KeyedBuckets(config.api_rate, config.api_burst, reactor.seconds),
            KeyedBuckets(config.api_auth_failures / 60, config.api_auth_failures,
                         reactor.seconds),
            reactor)
        # a backend may open a connection per request: the API's own limit
        # (answered as its problems are) comes first, the clients' on top
        api_gate = _http_gate(config, reactor, config.api_rate + config.connect_rate,
                              config.api_burst + config.connect_burst, "complete API request")
        api = Listener(config.api_port,
                       api_site(server_api, reactor, api_gate, config.handshake_timeout),
                       reactor)
        api.setName("api-listener")
        api.setServiceParent(top)
    listener = Listener(config.port, site, reactor,
                        endpoint=worker.endpoint(reactor) if worker else None)
    listener.setName("listener")
    listener.setServiceParent(top)
    return top


def quotas(config, seconds):
    """
    What each user may store, and -- where ids cost nothing to make (a
    client names itself, or the server names any newcomer) -- what the
    users of one client address may store together. With tokens, ids are
    the app's, and users who share an address (an office, a carrier's
    NAT) do not share a quota.
    """
    per_user = Shares(config.stored_per_hour, config.stored_bytes_per_hour,
                      config.conversations_per_hour)
    per_address = Shares(config.address_stored_per_hour, config.address_stored_bytes_per_hour,
                         config.address_conversations_per_hour)
    tokens = bool(config.jwt_secret or config.jwt_public_key_file)
    return Quotas(per_user, None if tokens else per_address, seconds)


def _http_gate(config, reactor, rate, burst, awaited):
    """
    The gate of a port that stays HTTP (API, metrics), as the clients'
    port's but for its own connections, counting the connecting address
    itself: no proxy's X-Forwarded-For is read there.
    """
    return Gate(maximum=config.max_connections_per_ip, trusted=(),
                deadline=config.handshake_timeout, clock=reactor,
                attempts=KeyedBuckets(rate, burst, reactor.seconds), awaited=awaited)


def announce(config):
    """
    One line that says what is starting and how it is set up, and one
    warning for each setting an operator would not want left as it is.
    """
    if config.store == "redis":
        store = (f"Redis at {config.redis_host}:{config.redis_port}"
                 f"{' (TLS)' if config.redis_tls else ''}, shared with other daemons")
    else:
        store = "memory (this daemon alone)"
    tokens = bool(config.jwt_secret or config.jwt_public_key_file)
    if tokens:
        identity = "JWT"
    elif config.anonymous:
        identity = "named by the server (--anonymous)"
    else:
        identity = "the userId asked for"
    origins = ", ".join(config.allowed_origin) or "own origin" + (
        f" ({', '.join(config.public_host)})" if config.public_host else " (loopback only)")
    _log.info(
        "Aleatoria {version} starting on {port}: store {store}; identity {identity}; "
        "origins {origins}; limits {rate}/s (burst {burst}) messages, {content} B content, "
        "{size} B frames, {rooms} rooms, {per_address} connections per address; "
        "history {history} per stream for {ttl} h; Sentry {sentry}; server API {api}",
        version=__version__, port=config.port, store=store, identity=identity,
        origins=origins, rate=config.rate_limit, burst=config.rate_burst,
        content=config.max_content_length, size=config.max_message_size,
        rooms=config.max_rooms, per_address=config.max_connections_per_ip,
        history=config.history_size, ttl=config.message_ttl_hours,
        sentry="on" if config.sentry_dsn else "off",
        api=f"on {config.api_port}" if config.api_port else "off",
    )
    if not config.allowed_origin and not config.public_host:
        _log.warn(
            "Neither --allowed-origin nor --public-host is set: only pages served "
            "from this machine (loopback) may open /ws"
        )
    if config.anonymous and not config.anonymous_secret:
        _log.warn(
            "--anonymous without ALEATORIA_ANONYMOUS_SECRET: reconnect tokens are signed "
            "with a random key, good only until this daemon stops (its workers share it; "
            "not after a restart, nor on another daemon)"
        )
    if not tokens and not config.anonymous:
        _log.warn(
            "No ALEATORIA_JWT_SECRET or --jwt-public-key-file: every client is who its "
            "userId says, and may connect as anybody (closing that user's connection)"
        )


def make_store(config, reactor, report=None):
    """
    The configured store, as a service to start and stop with the daemon;
    C{report} (the daemon's L{Report}) hears of its troubles.
    """
    ttl = config.message_ttl_hours * 3600
    if config.store == "memory":
        return MemoryStore(reactor, ttl, config.history_size, report=report,
                           max_bytes=config.max_history_bytes)
    endpoint, where, link = _redis_link(config, reactor)
    return RedisStore(endpoint, where, reactor, ttl=ttl, history_size=config.history_size,
                      prefix=config.redis_prefix, db=config.redis_db, report=report,
                      max_bytes=config.max_history_bytes, **link)


def _redis_link(config, reactor):
    """Where Redis is and how to log in: endpoint, C{host:port}, keywords."""
    return _redis_endpoint(config, reactor), f"{config.redis_host}:{config.redis_port}", dict(
        username=config.redis_username, password=config.redis_password,
        timeout=config.redis_timeout, retry_max=config.redis_retry_max,
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


class InOrder(MultiService):
    """
    Stops its children one at a time, in reverse order, each once the one
    before has finished (a L{MultiService} stops them all at once) -- all
    within C{deadline} seconds, past which the rest are stopped without
    being waited for. The children named in C{untimed} (the reporter, whose
    flush has its own limit) are waited for in any case.
    """

    _log = Logger()

    def __init__(self, reactor, deadline, untimed=()):
        super().__init__()
        self._reactor = reactor
        self._deadline = deadline
        self._untimed = untimed

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop_in_order())

    async def _stop_in_order(self):
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


def _finished(d, limit, log, name):
    """
    Fire with whether C{d} finished within C{limit} (seconds, reactor),
    without cancelling it; its failure is logged, not passed on.
    """
    outcome = Deferred()
    timer = None
    if limit is not None:
        seconds, reactor = limit
        timer = reactor.callLater(seconds, outcome.callback, False)

    def done(result):
        if isinstance(result, Failure):
            log.failure("Stopping the {name} failed", result, name=name)
        if timer is not None and timer.active():
            timer.cancel()
        if not outcome.called:
            outcome.callback(True)

    d.addBoth(done)
    return outcome


LISTEN_BACKLOG = 1024


def with_backlog(description):
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


def _where(address):
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
    privileges, and keeps the L{IListeningPort} as C{port}.
    """

    _log = Logger()
    port = None

    def __init__(self, description, factory, reactor, endpoint=None):
        self.description = description
        self._endpoint = endpoint or endpoints.serverFromString(
            reactor, with_backlog(description))
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
        self._log.info("Listening on {address}", address=_where(self.port.getHost()))

    def stopService(self):
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None
