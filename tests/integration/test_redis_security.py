"""
Reaching Redis safely: TLS with real verification, ACL users and passwords,
and a Redis that hangs (issue: Redis store, items 3 and 7).
"""

import os
import signal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher

from aleatoria.daemon.backends import make_backend
from aleatoria.daemon.service import make_service
from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.ops.reporting import Reporter
from aleatoria.redis.backend import RedisBackend

from ..support.lifecycle_helpers import until
from ..support.redis_server import RedisServer, acl_redis, free_port
from ..support.servers import Receiver, Server, redis_config, started, stop_server
from ..support.tls import make_ca_and_server


def tls_redis(directory, hostname):
    ca, cert, key = make_ca_and_server(directory, hostname)
    tls_port = free_port()
    server = RedisServer(
        directory, "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
        "--tls-auth-clients", "no",
    ).start()
    return server, tls_port, ca


@pytest_twisted.ensureDeferred
async def test_tls_with_verified_certificate(tmp_path):
    """With VALKEY_USE_TLS and a CA file, the store talks to Redis over verified TLS."""
    server, tls_port, ca = tls_redis(tmp_path, "localhost")
    try:
        config = redis_config(tls_port, **{"redis-host": "localhost", "redis-tls": True,
                                           "redis-ca-file": str(ca)})
        backend = await started(make_backend(config, reactor, REPORT))
        try:
            await backend.sessions.claim("alice")
            await backend.matchmaking.offer("alice")
            assert await backend.matchmaking.pool_size() == 1
            assert server.raw("SMEMBERS", "available:webrtc") == "alice"
        finally:
            await backend.stopService()
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_tls_refuses_a_certificate_for_another_host(tmp_path):
    """A certificate for another host name is refused: nothing is ever written."""
    server, tls_port, ca = tls_redis(tmp_path, "wrong.example")
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        config = redis_config(tls_port, **{"redis-host": "localhost", "redis-tls": True,
                                           "redis-ca-file": str(ca), "redis-timeout": "0.5"})
        backend = await starting(make_backend(config, reactor, REPORT))
        try:
            await until(lambda: any("unreachable" in formatEvent(e) for e in events))
            with pytest.raises(StoreUnavailable):
                await backend.matchmaking.offer("alice")
            assert server.raw("DBSIZE") == "0"
        finally:
            await backend.stopService()
    finally:
        globalLogPublisher.removeObserver(events.append)
        server.stop()


@pytest_twisted.ensureDeferred
async def test_acl_user_and_password(tmp_path):
    """VALKEY_USERNAME and VALKEY_PASSWORD log in as an ACL user."""
    server = acl_redis(tmp_path)
    try:
        config = redis_config(server.port, {"VALKEY_PASSWORD": "right-password"},
                              **{"redis-username": "chat"})
        backend = await started(make_backend(config, reactor, REPORT))
        try:
            await backend.sessions.claim("alice")
            await backend.sessions.join_room("r", "alice")
            assert await backend.sessions.room_members("r", 10, "") == (["alice"], 1, None)
        finally:
            await backend.stopService()
    finally:
        server.stop()


@pytest_twisted.ensureDeferred
async def test_wrong_password_degrades_with_a_clear_line(tmp_path):
    """
    A wrong password leaves the daemon serving live traffic, /ready degraded,
    and one log line that says Redis refuses or cannot be reached.
    """
    server = acl_redis(tmp_path)
    events = []
    globalLogPublisher.addObserver(events.append)
    password = "not-the-password-7f3a"  # no other line of the log could hold it
    config = redis_config(server.port, {"VALKEY_PASSWORD": password},
                          **{"redis-username": "chat", "redis-timeout": "0.5"})
    service = make_service(config, reactor)
    service.startService()
    daemon = Server(service)
    try:
        alice, bob = await daemon.connect_many("alice", "bob")
        alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {}})
        await bob.expect("webrtc_offer")
        await until(lambda: any("credentials" in formatEvent(e) for e in events))
        assert not daemon.backend.connected
        error = await alice.request({"type": "get_recent_messages", "room": "home-alice"},
                                    "error")
        assert error["payload"]["code"] == "unavailable"
    finally:
        globalLogPublisher.removeObserver(events.append)
        await stop_server(daemon)
        server.stop()
    assert not [formatEvent(e) for e in events if password in formatEvent(e)]


@pytest_twisted.ensureDeferred
async def test_hung_redis_times_out_and_bounds_waiting_commands(tmp_path):
    """
    A Redis that stops answering (SIGSTOP): commands fail with
    StoreUnavailable after the timeout, and past max_pending they fail at
    once instead of piling up. When it wakes, the store works again.
    """
    server = RedisServer(tmp_path).start()
    backend = await started(redis_backend(server.port, timeout=0.5, max_pending=5))
    pool_size = backend.matchmaking.pool_size
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        results = []
        waiting = [pool_size().addBoth(results.append) for _ in range(20)]
        immediate = [r for r in results if isinstance(r.value, StoreUnavailable)]
        assert len(immediate) == 15
        await until(lambda: len(results) == 20)
        assert all(r.check(StoreUnavailable) for r in results)
        assert backend.commands.pending == 0
        del waiting
        os.kill(server.process.pid, signal.SIGCONT)
        await until(lambda: backend.connected)
        assert await _eventually(pool_size) == 0
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await backend.stopService()
        server.stop()


REPORT = Reporter(clock=reactor).daemon


def redis_backend(port, timeout=2.0, max_pending=10000):
    """A Redis backend on the Redis at C{port}, commands timed out after C{timeout}."""
    return RedisBackend((HostnameEndpoint(reactor, "127.0.0.1", port), "test",
                         {"timeout": timeout}), reactor, ttl=60, history_size=10,
                        node_ttl=60, max_pending=max_pending, report=REPORT)


async def starting(backend):
    """Start C{backend} in a daemon's place, without waiting for Redis."""
    receiver = Receiver()
    backend.bus.listen(receiver)
    backend.sessions.listen(receiver)
    backend.startService()
    return backend


async def _eventually(command):
    """Run C{command} until it succeeds (the link may need a moment to settle)."""
    for _ in range(100):
        try:
            return await command()
        except StoreUnavailable:
            await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("never succeeded")


@pytest_twisted.ensureDeferred
async def test_our_timeout_counts_as_unavailable(tmp_path):
    """
    A command timed out by the store's own timer (before txredisapi's) is an
    outage too: StoreUnavailable, which is logged once, not per message.
    """
    server = RedisServer(tmp_path).start()
    backend = await started(redis_backend(server.port, timeout=0.3))
    link = backend.commands.link
    link._factory.replyTimeout = None
    for conn in link._factory.pool:
        conn.replyTimeout = None
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        with pytest.raises(StoreUnavailable):
            await backend.matchmaking.pool_size()
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await backend.stopService()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_session_bookkeeping_is_not_capped(tmp_path):
    """
    With max_pending commands waiting, other commands fail at once, but
    claims and releases still go through: a mass disconnect must not leave
    ghosts behind (the number of connections bounds them anyway).
    """
    server = RedisServer(tmp_path).start()
    backend = await started(redis_backend(server.port, max_pending=2))
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        waiting = [backend.matchmaking.pool_size(), backend.matchmaking.pool_size()]
        with pytest.raises(StoreUnavailable):
            await backend.matchmaking.offer("alice")
        claim = backend.sessions.claim("alice")
        release = backend.sessions.release("alice")
        os.kill(server.process.pid, signal.SIGCONT)
        await claim
        assert await release is None
        assert server.raw("EXISTS", "presence:alice") == "0"
        for d in waiting:
            await d
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await backend.stopService()
        server.stop()
