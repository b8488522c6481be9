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

from aleatoria.daemon.service import make_service, make_store
from aleatoria.domain.ports import StoreUnavailable
from aleatoria.redis.store import RedisStore

from .conftest import Server, connected, joined, redis_config, stop_server
from .lifecycle_helpers import until
from .redis_server import RedisServer, acl_redis, free_port
from .tls import make_ca_and_server


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
        store = await connected(make_store(config, reactor))
        try:
            await store.claim("alice")
            await store.offer("alice")
            assert await store.pool_size() == 1
            assert server.raw("SMEMBERS", "available:webrtc") == "alice"
        finally:
            await store.stopService()
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
        store = make_store(config, reactor)
        store.startService()
        try:
            await until(lambda: any("unreachable" in formatEvent(e) for e in events))
            with pytest.raises(StoreUnavailable):
                await store.offer("alice")
            assert server.raw("DBSIZE") == "0"
        finally:
            await store.stopService()
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
        store = await connected(make_store(config, reactor))
        peers = await joined(store)
        try:
            await store.claim("alice")
            await store.join_room("r", "alice")
            assert await store.room_members("r", 10, "") == (["alice"], 1, None)
        finally:
            await peers.stopService()
            await store.stopService()
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
    config = redis_config(server.port, {"VALKEY_PASSWORD": "wrong"},
                          **{"redis-username": "chat", "redis-timeout": "0.5"})
    service = make_service(config, reactor)
    service.startService()
    daemon = Server(service)
    try:
        alice, bob = await daemon.connect_many("alice", "bob")
        alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {}})
        await bob.expect("webrtc_offer")
        await until(lambda: any("credentials" in formatEvent(e) for e in events))
        assert not daemon.store.connected
        error = await alice.request({"type": "get_recent_messages", "room": "home-alice"},
                                    "error")
        assert error["payload"]["code"] == "unavailable"
    finally:
        globalLogPublisher.removeObserver(events.append)
        await stop_server(daemon)
        server.stop()
    assert not [formatEvent(e) for e in events if "wrong" in formatEvent(e)]


@pytest_twisted.ensureDeferred
async def test_hung_redis_times_out_and_bounds_waiting_commands(tmp_path):
    """
    A Redis that stops answering (SIGSTOP): commands fail with
    StoreUnavailable after the timeout, and past max_pending they fail at
    once instead of piling up. When it wakes, the store works again.
    """
    server = RedisServer(tmp_path).start()
    store = RedisStore(HostnameEndpoint(reactor, "127.0.0.1", server.port), "test", reactor,
                       ttl=60, history_size=10, timeout=0.5, max_pending=5)
    await connected(store)
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        results = []
        waiting = [store.pool_size().addBoth(results.append) for _ in range(20)]
        immediate = [r for r in results if isinstance(r.value, StoreUnavailable)]
        assert len(immediate) == 15
        await until(lambda: len(results) == 20)
        assert all(r.check(StoreUnavailable) for r in results)
        assert store.commands.pending == 0
        del waiting
        os.kill(server.process.pid, signal.SIGCONT)
        await until(lambda: store.connected)
        assert await _eventually(store.pool_size) == 0
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await store.stopService()
        server.stop()


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
    store = RedisStore(HostnameEndpoint(reactor, "127.0.0.1", server.port), "test", reactor,
                       ttl=60, history_size=10, timeout=0.3)
    await connected(store)
    store.link._factory.replyTimeout = None
    for conn in store.link._factory.pool:
        conn.replyTimeout = None
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        with pytest.raises(StoreUnavailable):
            await store.pool_size()
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await store.stopService()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_session_bookkeeping_is_not_capped(tmp_path):
    """
    With max_pending commands waiting, other commands fail at once, but
    claims and releases still go through: a mass disconnect must not leave
    ghosts behind (the number of connections bounds them anyway).
    """
    server = RedisServer(tmp_path).start()
    store = RedisStore(HostnameEndpoint(reactor, "127.0.0.1", server.port), "test", reactor,
                       ttl=60, history_size=10, max_pending=2)
    await connected(store)
    try:
        os.kill(server.process.pid, signal.SIGSTOP)
        waiting = [store.pool_size(), store.pool_size()]
        with pytest.raises(StoreUnavailable):
            await store.offer("alice")
        claim = store.claim("alice")
        release = store.release("alice")
        os.kill(server.process.pid, signal.SIGCONT)
        await claim
        assert await release is None
        assert server.raw("EXISTS", "presence:alice") == "0"
        for d in waiting:
            await d
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        await store.stopService()
        server.stop()
