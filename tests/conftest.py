"""
The fixtures every tier shares, and the tiers themselves: each test is
marked unit, integration or system after the directory it is in. The
helpers the fixtures use live in L{tests.support}.
"""

import gc
import itertools
import socket
import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from .support.lost_errors import LostErrors
from .support.redis_server import REDIS_SERVER, RedisServer
from .support.servers import (
    CONTRACT_HISTORY,
    redis_config,
    redis_daemon,
    start_server,
    started,
    stop_server,
)

TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items):
    """Mark each test with its tier, the directory under tests/ it is in."""
    here = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(here).parts[0] if item.path.is_relative_to(here) else None
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_collection_finish(session):
    """
    Leave what exists before the first test (modules, the collected tests)
    out of the garbage collections to come: the gate against lost errors
    collects after every test, and then only goes through what tests made.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def unit_tier_stays_in_memory(request, monkeypatch):
    """A unit test that opens a socket or starts a process fails: it belongs higher."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refused(*args, **kwargs):
        raise AssertionError("a unit test opens no socket and starts no process")

    monkeypatch.setattr(socket.socket, "__init__", refused)
    monkeypatch.setattr(subprocess.Popen, "__init__", refused)


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


@pytest_twisted.async_yield_fixture
async def server():
    """A daemon on the memory store; every client closed before teardown ends."""
    running = await start_server()
    yield running
    await stop_server(running)


@pytest.fixture(params=["memory", "redis"])
def two_servers(request):
    """
    C{start(env=None, first=None, **settings)} runs two servers and fires
    with them: on the memory store one daemon twice over (there is only
    one), on Redis two sharing it, whose C{connect} returns once the user
    is reachable from the other one. C{first}: settings of the first only.
    """
    from twisted.internet.defer import Deferred

    from .support.calls import registering

    servers = []

    async def start(env=None, first=None, **given):
        if request.param == "memory":
            servers.append(await start_server(env, **(first or {}), **given))
            return servers[-1], servers[-1]
        redis = request.getfixturevalue("own_redis")
        for settings in ({**(first or {}), **given}, given):
            servers.append(await redis_daemon(redis.port, env, **settings))
            registering(servers[-1], redis)
        return servers[-2], servers[-1]

    yield start
    for running in servers:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(running)))


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


_prefixes = itertools.count()


@pytest.fixture
def redis_prefix():
    """A key prefix no other test uses."""
    return f"test{next(_prefixes)}:"


@pytest_twisted.async_yield_fixture(params=["memory", "redis"])
async def backend(request):
    """Each backend in turn, fresh for every test, started with a recording receiver."""
    from twisted.internet import reactor
    from twisted.internet.task import Clock

    from aleatoria.daemon.backends import make_backend
    from aleatoria.memory.backend import MemoryBackend
    from aleatoria.ops.reporting import Reporter

    if request.param == "memory":
        made = await started(MemoryBackend(Clock(), ttl=3600, history_size=CONTRACT_HISTORY))
        yield made
        made.stopService()
        return
    server = request.getfixturevalue("redis_server")
    config = redis_config(server.port, **{
        "redis-prefix": request.getfixturevalue("redis_prefix"),
        "history-size": str(CONTRACT_HISTORY),
        "call-grace": "0",
    })
    made = await started(make_backend(config, reactor, Reporter(clock=reactor).daemon))
    yield made
    await made.stopService()


@pytest.fixture
def receiver():
    """A Sentry stand-in on a local port, keeping the events it is sent."""
    from .support.sentry_receiver import SentryReceiver

    receiver = SentryReceiver()
    yield receiver
    pytest_twisted.blockon(receiver.stop())


@pytest.fixture
def reporting(receiver):
    """A daemon reporting to the receiver; stopped (and flushed) after the test."""
    from twisted.internet.defer import Deferred

    servers = []

    async def start(env=None, **given):
        env = {"SENTRY_DSN": receiver.dsn, **(env or {})}
        servers.append(await start_server(env, **given))
        return servers[-1]

    yield start
    for running in servers:
        if running.service.running:
            pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(running)))
