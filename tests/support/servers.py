"""
Daemons in this process for the tests: a test config, a running
L{Server} and the clients a test opened on it, on memory or on a Redis;
a backend started with a recording L{Receiver} in a daemon's place.
"""

from zope.interface import implementer

from aleatoria.daemon import config
from aleatoria.daemon.service import make_service
from aleatoria.domain.ports import IReceiver

from . import wsclient

ORIGIN = "http://test.example"


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
    # Tests pair the same users again and again; the tests of the rules set them.
    given.setdefault("skips-per-minute", "0")
    given.setdefault("rematch-after", "0")
    return config.resolve(given, env or {})


class Server:
    """A running daemon and the clients a test opened against it."""

    def __init__(self, service):
        self.service = service
        self.port = service.getServiceNamed("listener").port.getHost().port
        self.hub = service.getServiceNamed("hub")
        self.backend = service.getServiceNamed("backend")
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

        backend = self.backend
        if backend.kind == "redis":
            await until(lambda: backend.connected and backend.bus.subscribed
                        and backend.sessions.joined)


async def start_server(env=None, **given):
    from twisted.internet import reactor

    service = make_service(make_config(env, **given), reactor)
    service.startService()
    return Server(service)


async def stop_server(server):
    for client in server.clients:
        await client.close()
    await server.service.stopService()


def redis_config(port, env=None, **given):
    """A test config for the Redis store on the given local port."""
    given.setdefault("store", "redis")
    given.setdefault("redis-host", "127.0.0.1")
    given.setdefault("redis-port", str(port))
    return make_config(env, **given)


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


@implementer(IReceiver)
class Receiver:
    """
    What a backend hands a daemon, tested without a hub: nobody is
    connected here; what it is handed is kept, in order (unless C{keep} is
    false: a test of what memory comes back keeps nothing).
    """

    def __init__(self, keep=True):
        self.handed = [] if keep else _Forgotten()

    def calls_here(self):
        return {}

    def sessions_here(self):
        return {}

    def load(self):
        return {"connections": 0, "rooms": 0}

    def room_post(self, message):
        self.handed.append(("room", message))

    def inbox_post(self, user, message):
        self.handed.append(("inbox", user, message))
        return False

    def deliver_local(self, user, push):
        self.handed.append(("user", user, push))

    def broadcast_local(self, room, push):
        self.handed.append(("broadcast", room, push))

    def replaced_elsewhere(self, user):
        self.handed.append(("replaced", user))

    def kicked(self, user, reason):
        self.handed.append(("kicked", user, reason))

    def reaped(self, user, rooms, peer):
        self.handed.append(("reaped", user, rooms, peer))

    def call_lapsed(self, user, peer):
        self.handed.append(("lapsed", user, peer))


class _Forgotten(list):
    def append(self, item):
        pass


async def started(backend, receiver=None):
    """
    Start a backend with C{receiver} (a L{Receiver} by default) in a
    daemon's place; on Redis, wait (bounded) until it is connected,
    subscribed and counts among the live daemons, as a daemon's would.
    """
    from .lifecycle_helpers import until

    backend.receiver = receiver or Receiver()
    backend.bus.listen(backend.receiver)
    backend.sessions.listen(backend.receiver)
    backend.startService()
    if backend.kind == "redis":
        await until(lambda: backend.connected and backend.bus.subscribed
                    and backend.sessions.joined)
    return backend


CONTRACT_HISTORY = 5
"""The history size of the backends the contract suites hold to their seams."""
