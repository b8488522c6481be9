"""
What aleatoria/redis/link.py changes of txredisapi, pinned: each test fails
if txredisapi stops calling the hook we rely on, or if our handshake stops
doing its job.
"""

import hashlib
import random

import pytest
import pytest_twisted
import txredisapi
from twisted.internet import reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import deferLater

from aleatoria.redis.link import FIRST_RETRY, Link, Script, backoff

from ..support.lifecycle_helpers import until

SCRIPTS = ("return 1", "return 2")


def test_backoff_doubles_up_to_the_cap_with_jitter():
    """Waits double from 50 ms and never exceed the cap; each is drawn from the upper half."""
    rng = random.Random(7).random
    for attempt in range(1, 40):
        ceiling = min(1.0, FIRST_RETRY * 2 ** (attempt - 1))
        delay = backoff(attempt, 1.0, rng)
        assert ceiling / 2 <= delay <= ceiling
    assert {round(backoff(30, 1.0, rng), 3) for _ in range(20)} != {1.0}, "no jitter"


def test_txredisapi_asks_our_factory_for_the_delay():
    """txredisapi's pool slot takes its retry delay from the factory's retryDelay."""
    link = Link(HostnameEndpoint(reactor, "127.0.0.1", 1), "x", reactor, timeout=1,
                retry_max=0.25)
    slot = txredisapi._PoolSlot(link._factory, link.endpoint)
    assert all(0.125 <= slot._retryDelay(n) <= 0.25 for n in range(5, 30))


def _link(redis, **options):
    events = []
    link = Link(HostnameEndpoint(reactor, "127.0.0.1", redis.port), f"127.0.0.1:{redis.port}",
                reactor, on_change=events.append, **options)
    return link, events


@pytest_twisted.ensureDeferred
async def test_scripts_are_loaded_at_connect(own_redis):
    """The command link loads its scripts in the handshake: each call is an EVALSHA at once."""
    link, events = _link(own_redis, timeout=1, scripts=[Script(s) for s in SCRIPTS])
    link.start()
    try:
        await until(lambda: link.up)
        (protocol,) = link._factory.pool
        hashes = [hashlib.sha1(s.encode()).hexdigest() for s in SCRIPTS]
        assert set(hashes) <= protocol.script_hashes
        assert own_redis.raw("SCRIPT", "EXISTS", *hashes).split() == ["1", "1"]
        assert await link.handler.eval(SCRIPTS[1]) == 2
        assert events == [True]
    finally:
        await link.stop()


@pytest_twisted.ensureDeferred
async def test_a_handshake_that_hangs_is_retried(own_redis):
    """
    A Redis that accepts the connection but does not answer (SIGSTOP): the
    handshake times out, the connection is dropped and tried again, and
    the link comes up once Redis answers -- where txredisapi alone would
    stop trying for good.
    """
    own_redis.pause()
    link, events = _link(own_redis, timeout=0.3, db=1, scripts=[Script(s) for s in SCRIPTS])
    link.start()
    try:
        await deferLater(reactor, 1.0, lambda: None)
        assert not link.up
        own_redis.resume()
        await until(lambda: link.up)
        assert await link.handler.execute_command("CLIENT", "INFO") is not None
        assert events == [True]
    finally:
        own_redis.resume()
        await link.stop()


@pytest_twisted.ensureDeferred
async def test_subscriber_hears_and_pings(own_redis):
    """The pub/sub link subscribes in its handshake, hears posts, and answers PING."""
    heard = []
    link, _ = _link(own_redis, timeout=1, channels=("a", "b"), on_message=heard.append)
    link.start()
    try:
        await until(lambda: link.up)
        assert own_redis.raw("PUBSUB", "NUMSUB", "a", "b").split() == ["a", "1", "b", "1"]
        own_redis.raw("PUBLISH", "b", "hello")
        await until(lambda: heard == ["hello"])
        await link.ping()
    finally:
        await link.stop()


def test_replies_are_parsed_by_hiredis():
    """
    Without hiredis, txredisapi hands each bulk reply after the first in a
    read to the next reactor turn (callLater 0): pub/sub posts arrived one
    per turn, and room fan-out on Redis fell to a quarter (the posts'
    frames no longer shared a system call per client).
    """
    import txredisapi

    from aleatoria.redis.link import _CommandProtocol, _SubscriberProtocol

    assert issubclass(_CommandProtocol, txredisapi.HiredisProtocol)
    assert issubclass(_SubscriberProtocol, txredisapi.HiredisProtocol)


async def _commands(redis, timeout):
    from aleatoria.redis.connection import CommandLink

    commands = CommandLink(HostnameEndpoint(reactor, "127.0.0.1", redis.port),
                           f"127.0.0.1:{redis.port}", reactor, timeout=timeout, max_pending=10)
    commands.startService()
    await until(lambda: commands.connected)
    return commands


@pytest_twisted.ensureDeferred
async def test_a_late_reply_fails_its_command_only(own_redis):
    """
    A reply later than the timeout (Redis busy in another client's script)
    fails that command alone: the connection stays (same CLIENT ID), the
    late reply is dropped, and the next command gets its own reply --
    txredisapi's own reply timeout would have cut the connection.
    """
    from twisted.internet.threads import deferToThread

    from aleatoria.domain.refusals import StoreUnavailable

    from .test_resume_limits import BUSY

    commands = await _commands(own_redis, timeout=0.5)
    try:
        own_redis.raw("SET", "late", "the late reply")
        own_redis.raw("SET", "next", "its own reply")
        client = await commands.call("execute_command", "CLIENT", "ID")
        busy = deferToThread(own_redis.raw, "EVAL", BUSY, "0", "800000")
        await deferLater(reactor, 0.1, lambda: None)
        with pytest.raises(StoreUnavailable):
            await commands.call("execute_command", "GET", "late")
        await busy
        assert await commands.call("execute_command", "GET", "next") == "its own reply"
        assert await commands.call("execute_command", "CLIENT", "ID") == client
    finally:
        await commands.stopService()


@pytest_twisted.ensureDeferred
async def test_a_connection_that_answers_no_ping_is_made_anew(own_redis):
    """
    A command times out and the PING that follows it does too (Redis
    stopped): the connection is cut, and made anew once Redis answers.
    """
    from aleatoria.domain.refusals import StoreUnavailable

    commands = await _commands(own_redis, timeout=0.3)
    changes = []
    commands.watch(changes.append)
    try:
        client = await commands.call("execute_command", "CLIENT", "ID")
        own_redis.pause()
        try:
            with pytest.raises(StoreUnavailable):
                await commands.call("execute_command", "PING")
            await until(lambda: changes == [False])
        finally:
            own_redis.resume()
        await until(lambda: changes == [False, True])
        assert await commands.call("execute_command", "CLIENT", "ID") != client
    finally:
        await commands.stopService()


@pytest_twisted.ensureDeferred
async def test_a_replica_is_refused_and_its_era_differs(own_redis, tmp_path):
    """
    The handshake refuses a Redis that is not the primary (a replica, a
    demoted primary) and keeps trying; promoted, it is taken -- in an era
    other than its former primary's, whose writes it may lack.
    """
    from twisted.logger import formatEvent, globalLogPublisher

    from ..support.redis_server import RedisServer

    replica = RedisServer(tmp_path / "replica", "--replicaof", "127.0.0.1",
                          str(own_redis.port))
    (tmp_path / "replica").mkdir()
    replica.start()
    lines = []

    def heard(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(heard)
    primary, _ = _link(own_redis, timeout=1)
    link, events = _link(replica, timeout=1, retry_max=0.1)
    primary.start()
    link.start()
    try:
        await until(lambda: primary.up and sum("role:slave" in line for line in lines) == 1)
        await deferLater(reactor, 0.5, lambda: None)
        assert not link.up and events == []
        assert sum("role:slave" in line for line in lines) == 1
        replica.raw("REPLICAOF", "NO", "ONE")
        await until(lambda: link.up)
        assert len(link.era) == 8 and link.era != primary.era
    finally:
        globalLogPublisher.removeObserver(heard)
        await link.stop()
        await primary.stop()
        replica.stop()
