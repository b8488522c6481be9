import itertools

import pytest
import pytest_twisted

from aleatoria.daemon import config
from aleatoria.daemon.service import make_service

from . import wsclient
from .lost_errors import LostErrors
from .redis_server import REDIS_SERVER, RedisServer

ORIGIN = "http://test.example"


@pytest.fixture(autouse=True)
def lost_errors():
    """
    Fail any test during which Twisted logged an unhandled error in a
    Deferred (or in a reactor callback): errors must be handled or reported.
    """
    with LostErrors() as gate:
        yield gate
    if gate.seen:
        pytest.fail("Unhandled errors were logged:\n" + "\n".join(gate.seen), pytrace=False)


def make_config(env=None, **given):
    """
    A L{config.Config} for tests: loopback, an ephemeral port, our origin;
    C{env} stands in for the environment (the only way to give a password).
    """
    given.setdefault("port", "tcp:0:interface=127.0.0.1")
    given.setdefault("allowed-origin", ORIGIN)
    # Tests that flood a room are about fan-out, not about the rate limit;
    # the tests of the limit set their own.
    given.setdefault("rate-limit", "100000")
    given.setdefault("rate-burst", "100000")
    given.setdefault("stored-per-hour", "1000000")
    given.setdefault("address-rate", "1000000")
    given.setdefault("address-burst", "1000000")
    given.setdefault("conversations-per-hour", "1000000")
    given.setdefault("stored-bytes-per-hour", "1000000000")
    given.setdefault("address-stored-per-hour", "1000000")
    given.setdefault("address-stored-bytes-per-hour", "1000000000")
    given.setdefault("address-conversations-per-hour", "1000000")
    given.setdefault("max-rooms-per-address", "1000000")
    return config.resolve(given, env or {})


class Server:
    """A running daemon and the clients a test opened against it."""

    def __init__(self, service):
        self.service = service
        self.port = service.getServiceNamed("listener").port.getHost().port
        self.hub = service.getServiceNamed("hub")
        self.store = service.getServiceNamed("store")
        self.clients = []

    async def connect(self, user, room=None, **kwargs):
        """
        Connect C{user}, by default into a room of its own (C{home-<user>}),
        so that presence events of the shared C{Lobby} stay out of tests
        that are not about them.
        """
        if room is None:
            room = f"home-{user}"
        client = await wsclient.connect(self.port, user, room, **kwargs)
        self.clients.append(client)
        return client

    async def connect_many(self, *users, room=None):
        return [await self.connect(user, room) for user in users]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}".encode()

    async def ready(self):
        """GET /ready: the status code and the decoded body."""
        import json

        from twisted.internet import reactor
        from twisted.web.client import Agent, readBody

        response = await Agent(reactor).request(b"GET", self.url("/ready"))
        return response.code, json.loads(await readBody(response))

    async def settled(self):
        """Wait until the daemon serves fully: on Redis, connected, subscribed, joined."""
        from .lifecycle_helpers import until

        if self.store.kind == "redis":
            cluster = self.service.getServiceNamed("peers")
            await until(lambda: self.store.connected and cluster.subscribed and cluster.joined)


async def start_server(env=None, **given):
    from twisted.internet import reactor

    service = make_service(make_config(env, **given), reactor)
    service.startService()
    return Server(service)


async def stop_server(server):
    for client in server.clients:
        await client.close()
    await server.service.stopService()


@pytest_twisted.async_yield_fixture
async def server():
    """A daemon on the memory store; every client closed before teardown ends."""
    running = await start_server()
    yield running
    await stop_server(running)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server per test worker; tests keep apart by key prefix."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own: an empty database, free to stop."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def redis_daemon(port, env=None, *, settled=True, **given):
    """
    A daemon on the Redis at C{port}, in this process; serving fully unless
    told not to wait until it is C{settled}.
    """
    from twisted.internet import reactor

    service = make_service(redis_config(port, env, **given), reactor)
    service.startService()
    server = Server(service)
    if settled:
        await server.settled()
    return server


_prefixes = itertools.count()


@pytest.fixture
def redis_prefix():
    """A key prefix no other test uses."""
    return f"test{next(_prefixes)}:"


async def connected(store):
    """Start a Redis store and wait (bounded) until it has its connection."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    store.startService()
    for _ in range(200):
        if store.connected:
            return store
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("the store never connected")


class NobodyHere:
    """The receiver of peers tested without a hub: no sessions here."""

    def sessions(self):
        return {}


def peers_for(store, node_ttl=60, kind=None):
    """
    The L{RedisPeers} (or a C{kind} of them) of a Redis store, logging in
    as the store does; not started.
    """
    from twisted.internet import reactor

    from aleatoria.ops.reporting import Reporter
    from aleatoria.redis.peers import RedisPeers

    link = store.link
    login = {"timeout": link.timeout, "username": link.username, "password": link.password}
    peers = (kind or RedisPeers)(store, (link.endpoint, link.where, login), reactor,
                                 Reporter().daemon, node_ttl=node_ttl)
    peers.listen(NobodyHere())
    return peers


async def joined(store):
    """
    Start, beside a connected Redis store, the peers that make its node
    live (heartbeat) and listening (subscribed), as a daemon's would; wait
    until it is both. The caller stops the peers it returns.
    """
    from .lifecycle_helpers import until

    peers = peers_for(store)
    peers.startService()
    peers.resync()
    await until(lambda: peers.subscribed and peers.joined)
    return peers


def redis_config(port, env=None, **given):
    """A test config for the Redis store on the given local port."""
    given.setdefault("store", "redis")
    given.setdefault("redis-host", "127.0.0.1")
    given.setdefault("redis-port", str(port))
    return make_config(env, **given)
