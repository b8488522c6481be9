"""
Composition: one L{InOrder} service holding the reporter, the backend,
the hub and the listeners, built from a L{aleatoria.daemon.config.Config}.
This is the one module that knows every part; the parts know only the
seams of L{aleatoria.domain.ports}, and what each is handed.

Children stop one after another, in reverse order, under one deadline: the
listeners first (no new clients), then the hub (closes the clients with
1001 and releases their sessions, then leaves the other daemons), the
backend (stop beating, unsubscribe, disconnect), and last the reporter,
which flushes what all of them reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.logger import Logger

from aleatoria.daemon.announce import announce
from aleatoria.daemon.backends import make_backend
from aleatoria.daemon.config import Config
from aleatoria.daemon.lifecycle import InOrder, Listener, Reactor
from aleatoria.daemon.workers import Worker, Workers, metrics_port, orphan_watch, shared_environment
from aleatoria.domain.clock import MessageClock
from aleatoria.domain.hub import Hub, Rules
from aleatoria.domain.limits import KeyedBuckets, Quotas, Seconds, Shares
from aleatoria.domain.matchmaking import PairingRules
from aleatoria.domain.rooms import RoomQuota
from aleatoria.edge import frames
from aleatoria.edge.admission import Admission, Gate
from aleatoria.edge.auth import policy_from_config, with_anonymous_key
from aleatoria.edge.connection_limits import Budgets, Limits
from aleatoria.edge.ice import IceServers
from aleatoria.edge.protocol import ClientFactory
from aleatoria.edge.render import Outlet
from aleatoria.edge.router import Reads, Router
from aleatoria.http.api import ServerAPI
from aleatoria.http.reports import ReportsAPI
from aleatoria.http.site import api_site, make_site, metrics_site
from aleatoria.http.websocket import WebSocketEndpoint
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.accounting import Accounting
from aleatoria.ops.metrics import Metrics
from aleatoria.ops.observers import BanCounters, Breadcrumbs, Counters, LogLines
from aleatoria.ops.reporting import Reporter
from aleatoria.ops.webhooks import Webhooks
from aleatoria.redis.backend import RedisBackend

_log = Logger()


def make_service(config: Config, reactor: Reactor = None, worker: Worker | None = None,
                 arguments: Sequence[str] = ()) -> InOrder:
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
    frames.lazy_debug_lines()
    top = InOrder(reactor, config.shutdown_timeout, untimed=("reporter",))
    index = worker.index if worker else (0 if config.workers > 1 else None)
    metrics = Metrics(worker=index)
    reporter = _reporter(config, metrics, reactor)
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

    backend = make_backend(config, reactor, reporter.daemon)
    backend.setName("backend")
    backend.setServiceParent(top)

    clock = MessageClock()
    outlet = Outlet(frames.prepare_envelope, clock, metrics,
                    IceServers(config.stun_url, config.turn_url, config.turn_secret,
                               config.turn_ttl, reactor.seconds))
    accounting = Accounting(reporter, metrics, backend.kind)
    hub = Hub(backend, outlet, clock, accounting, rules=_rules(config),
              quotas=quotas(config, reactor.seconds))
    hub.observe(LogLines())
    hub.observe(Counters(metrics))
    hub.observe(BanCounters(metrics))
    if reporter.enabled:
        hub.observe(Breadcrumbs(reporter))
    if config.webhook_url:
        hub.observe(_webhooks(config, backend, metrics, reporter, reactor, top))
    hub.setName("hub")
    hub.setServiceParent(top)
    metrics.watch_hub(hub)
    metrics.watch_evictions(backend.evictions)
    metrics.pool_refresher(backend.matchmaking, reactor).setServiceParent(top)

    admission = Admission(config.max_connections_per_ip,
                          KeyedBuckets(config.connect_rate, config.connect_burst,
                                       reactor.seconds),
                          config.trusted_proxy)
    factory = _client_factory(config, hub, outlet, reporter, accounting, metrics, admission,
                              reactor)
    gate = Gate(admission=admission, deadline=config.handshake_timeout, clock=reactor)
    apart = bool(config.metrics_port)
    site = make_site(WebSocketEndpoint(factory), hub, backend, None if apart else metrics,
                     reactor, config.handshake_timeout, gate, demo=config.demo)
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
        _api_listener(config, hub, reactor).setServiceParent(top)
    listener = Listener(config.port, site, reactor,
                        endpoint=worker.endpoint(reactor) if worker else None)
    listener.setName("listener")
    listener.setServiceParent(top)
    return top


def _reporter(config: Config, metrics: Metrics, reactor: Reactor) -> Reporter:
    return Reporter(
        dsn=config.sentry_dsn or None, environment=config.sentry_env,
        debug=config.sentry_debug, sample_rate=config.sentry_sample_rate,
        release=config.sentry_release or None,
        scrub=[config.redis_password, config.jwt_secret, config.anonymous_secret,
               config.api_token, config.turn_secret, config.webhook_secret],
        on_sent=lambda kind: metrics.sentry_events.labels(kind).inc(),
        on_withheld=lambda operation: metrics.reports_withheld.labels(operation).inc(),
        clock=reactor,
    )


def _webhooks(config: Config, backend: MemoryBackend | RedisBackend, metrics: Metrics,
              reporter: Reporter, reactor: Reactor, top: InOrder) -> Webhooks:
    """Webhooks, stopped after the hub: what it tells as it drains goes out too."""
    webhooks = Webhooks(config.webhook_url, config.webhook_secret, backend.sessions.node,
                        capacity=config.webhook_queue,
                        retry_seconds=config.webhook_retry_hours * 3600,
                        metrics=metrics, report=reporter.daemon, reactor=reactor)
    webhooks.setName("webhooks")
    webhooks.setServiceParent(top)
    return webhooks


def _rules(config: Config) -> Rules:
    return Rules(max_content=config.max_content_length, max_rooms=config.max_rooms,
                 presence_limit=config.presence_limit, signaling=config.signaling,
                 room_quota=RoomQuota(config.max_rooms_total, config.max_room_members,
                                      config.max_rooms_per_address),
                 max_blocks=config.max_blocks, reports_per_hour=config.reports_per_hour,
                 report_ttl=config.report_ttl_hours * 3600,
                 pairing=PairingRules(config.skips_per_minute, config.rematch_after))


def _client_factory(config: Config, hub: Hub, outlet: Outlet, reporter: Reporter,
                    accounting: Accounting, metrics: Metrics, admission: Admission,
                    reactor: Reactor) -> ClientFactory:
    """The WebSocket side of the clients' port: each connection's protocol and what it shares."""
    limits = Limits(config.rate_limit, config.rate_burst, config.outbound_messages,
                    config.outbound_bytes, config.outbound_stall)
    router = Router(hub, outlet, reporter, accounting, metrics,
                    Reads(config.max_reads, config.max_reads_per_ip))
    return ClientFactory(
        hub=hub, router=router, outlet=outlet, reporter=reporter, admission=admission,
        origins=config.origin_policy(), identities=policy_from_config(config), limits=limits,
        budgets=Budgets(limits, config.address_rate, config.address_burst, reactor.seconds),
        clock=reactor,
        options=dict(
            maxMessagePayloadSize=config.max_message_size,
            maxFramePayloadSize=config.max_message_size,
            autoPingInterval=config.ping_interval,
            autoPingTimeout=config.idle_timeout - config.ping_interval,
            openHandshakeTimeout=config.handshake_timeout,
        ),
    )


def _api_listener(config: Config, hub: Hub, reactor: Reactor) -> Listener:
    server_api = ServerAPI(
        hub.admin, config.api_token,
        KeyedBuckets(config.api_rate, config.api_burst, reactor.seconds),
        KeyedBuckets(config.api_auth_failures / 60, config.api_auth_failures, reactor.seconds),
        reactor, routes=ReportsAPI(hub.reported).routes())
    # a backend may open a connection per request: the API's own limit
    # (answered as its problems are) comes first, the clients' on top
    api_gate = _http_gate(config, reactor, config.api_rate + config.connect_rate,
                          config.api_burst + config.connect_burst, "complete API request")
    api = Listener(config.api_port,
                   api_site(server_api, reactor, api_gate, config.handshake_timeout), reactor)
    api.setName("api-listener")
    return api


def quotas(config: Config, seconds: Seconds) -> Quotas:
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


def _http_gate(config: Config, reactor: Reactor, rate: float, burst: int, awaited: str) -> Gate:
    """
    The gate of a port that stays HTTP (API, metrics), as the clients'
    port's but for its own connections, counting the connecting address
    itself: no proxy's X-Forwarded-For is read there.
    """
    admission = Admission(config.max_connections_per_ip,
                          KeyedBuckets(rate, burst, reactor.seconds))
    return Gate(admission=admission, deadline=config.handshake_timeout, clock=reactor,
                awaited=awaited)
