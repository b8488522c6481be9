"""
Webhooks to the app's backend (issue #24, section 5), received by a real
HTTP server in the test and verified with the C{standardwebhooks}
package: every event type on both stores, each sent once by the daemon
where it happened, retries with the same id, drops counted and logged,
one Sentry event for an endpoint that keeps failing, and a shutdown that
does not wait on a receiver that never answers.
"""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, readBody

from ..support.api import TOKEN, call
from ..support.lifecycle_helpers import until
from ..support.pairing import available, pair
from ..support.servers import redis_daemon, start_server, stop_server
from ..support.webhook_receiver import SECRET, WebhookReceiver

ENV = {"ALEATORIA_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    pytest_twisted.blockon(receiver.stop())


@pytest.fixture
def daemons(request):
    """A way to start daemons: on the memory store, or on a Redis of the test's own."""
    servers = []
    store = getattr(request, "param", "memory")

    async def start(env=None, **given):
        env = {**ENV, **(env or {})}
        if store == "memory":
            server = await start_server(env, **given)
        else:
            redis = request.getfixturevalue("redis_server")
            given.setdefault("redis-prefix", request.getfixturevalue("redis_prefix"))
            server = await redis_daemon(redis.port, env, **given)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.service.running:
            pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


class Logged:
    """The daemon's log lines about webhooks, as text, while a test runs."""

    def __init__(self):
        self.lines = []

    def __call__(self, event):
        if event.get("log_namespace") == "aleatoria.webhooks":
            from twisted.logger import formatEvent

            self.lines.append(formatEvent(event))


@pytest.fixture
def logged():
    observer = Logged()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


async def counted(server, outcome):
    """C{aleatoria_webhooks_total} of C{outcome}, scraped from /metrics."""
    response = await Agent(reactor).request(b"GET", server.url("/metrics"))
    for line in (await readBody(response)).decode().splitlines():
        if line.startswith(f'aleatoria_webhooks_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


async def counted_at_least(server, outcome, count):
    """Wait (bounded: 10 s) until /metrics counts C{count} webhooks of C{outcome}."""
    from twisted.internet.task import deferLater

    for _ in range(200):
        if await counted(server, outcome) >= count:
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"never {count} webhooks {outcome}")


@pytest.mark.parametrize("daemons", ["memory", "redis"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_every_event_type(receiver, daemons):
    """
    Connects, a pairing, a hangup, a skip and a disconnect reach the
    receiver signed, as user.connected, match.started, match.ended
    (hangup, skipped, disconnected) and user.disconnected.
    """
    server = await daemons(**{"webhook-url": receiver.url})
    node = server.hub.sessions.node
    alice, bob, carol = await server.connect_many("alice", "bob", "carol")
    connected = await receiver.event("user.connected", 3)
    assert sorted(e["data"]["userId"] for e in connected) == ["alice", "bob", "carol"]
    assert connected[0]["data"] == {"userId": connected[0]["data"]["userId"],
                                    "address": "127.0.0.1", "daemon": node}

    await available(bob)
    await pair(alice, bob)
    (started,) = await receiver.event("match.started")
    assert started["data"] == {
        "users": [{"userId": "alice", "role": "impolite"}, {"userId": "bob", "role": "polite"}],
        "segment": "default", "commonInterests": []}
    assert started["timestamp"].endswith("Z")

    alice.send({"type": "hangup", "toUser": "bob"})
    await bob.expect("hangup")
    (hung_up,) = await receiver.event("match.ended")
    assert {k: v for k, v in hung_up["data"].items() if k != "duration"} == {
        "users": ["alice", "bob"], "endedBy": "alice", "reason": "hangup"}
    assert hung_up["data"]["duration"] >= 0

    await available(bob)
    await pair(alice, bob)
    await available(carol)
    alice.send({"type": "request_random_peer", "payload": {"currentPeerId": "bob"}})
    await bob.expect("hangup")
    await alice.expect("assign_role")
    skipped = (await receiver.event("match.ended", 2))[1]
    assert skipped["data"]["reason"] == "skipped"
    assert skipped["data"]["users"] == ["alice", "bob"] and skipped["data"]["endedBy"] == "alice"
    assert skipped["data"]["duration"] >= 0

    await carol.close()
    gone = (await receiver.event("match.ended", 3))[2]
    assert {k: v for k, v in gone["data"].items() if k != "duration"} == {
        "users": ["carol", "alice"], "endedBy": "carol", "reason": "disconnected"}
    assert gone["data"]["duration"] >= 0
    (left,) = await receiver.event("user.disconnected")
    assert left["data"] == {"userId": "carol", "address": "127.0.0.1", "daemon": node}
    assert len(receiver.events("match.started")) == 3
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("daemons", ["redis"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_each_event_once_by_the_daemon_where_it_happened(receiver, daemons):
    """
    Two daemons on one Redis, both posting to one receiver: alice on one
    and bob on the other are paired and part; each event comes once, from
    the daemon where it happened.
    """
    prefix = "once:"
    one = await daemons(**{"webhook-url": receiver.url, "redis-prefix": prefix})
    two = await daemons(**{"webhook-url": receiver.url, "redis-prefix": prefix})
    alice = await one.connect("alice")
    bob = await two.connect("bob")
    await available(bob)
    await pair(alice, bob)
    await bob.close()
    await alice.expect("hangup")
    await receiver.event("user.disconnected")
    await receiver.event("match.ended")
    await bob.closed()
    await alice.close()
    await receiver.event("user.disconnected", 2)
    daemon_of = {e["data"]["userId"]: e["data"]["daemon"]
                 for e in receiver.events("user.connected")}
    assert daemon_of == {"alice": one.hub.sessions.node, "bob": two.hub.sessions.node}
    assert len(receiver.events("match.started")) == 1
    (ended,) = receiver.events("match.ended")
    assert ended["data"]["endedBy"] == "bob" and ended["data"]["reason"] == "disconnected"
    assert ended["data"]["duration"] >= 0
    assert len(receiver.events()) == 6


@pytest_twisted.ensureDeferred
async def test_a_failing_receiver_gets_the_event_again_with_the_same_id(daemons):
    """
    A receiver that answers 503 twice, then 204, gets the event a third
    time: the same webhook-id, each attempt signed anew (and verified).
    """
    receiver = WebhookReceiver(failures=2)
    try:
        server = await daemons(**{"webhook-url": receiver.url})
        await server.connect("alice")
        (event,) = await receiver.event("user.connected")
        assert event["data"]["userId"] == "alice"
        assert len(receiver.attempts) == 3
        assert len({headers["webhook-id"] for headers, _ in receiver.attempts}) == 1
        assert len({body for _, body in receiver.attempts}) == 1
        assert await counted(server, "failed") == 2
        assert await counted(server, "delivered") == 1
    finally:
        await receiver.stop()


@pytest_twisted.ensureDeferred
async def test_a_receiver_down_past_the_retry_window_drops_counted_and_logged(
        daemons, logged):
    """
    Nobody listens at the URL: the event is retried until its time
    (--webhook-retry-hours) is up, then dropped, counted and logged.
    """
    receiver = WebhookReceiver()
    url = receiver.url
    await receiver.stop()
    server = await daemons(**{"webhook-url": url, "webhook-retry-hours": "0.0005"})
    await server.connect("alice")
    await counted_at_least(server, "dropped_expired", 1)
    assert await counted(server, "failed") >= 2
    assert await counted(server, "delivered") == 0
    assert [line for line in logged.lines if line.startswith("Dropped webhook user.connected")
            and "retried for --webhook-retry-hours" in line]
    assert [line for line in logged.lines if line.startswith("Webhooks to http://127.0.0.1:")]
    assert not [line for line in logged.lines if "t0ps3cret" in line]


@pytest_twisted.ensureDeferred
async def test_past_the_queue_webhooks_are_dropped_counted_and_logged(daemons, logged):
    """
    With room for 2 webhooks and a receiver that never answers, 5 connects
    make 2 webhooks wait and 3 dropped: counted, and logged -- the first
    drop in full, the rest of the minute as one sum (here at shutdown,
    with the disconnects' webhooks dropped as well).
    """
    receiver = WebhookReceiver(hang=True)
    try:
        server = await daemons(**{"webhook-url": receiver.url, "webhook-queue": "2"})
        for user in ("u1", "u2", "u3", "u4", "u5"):
            await server.connect(user)
        await until(lambda: len(receiver.attempts) == 2)
        assert await counted(server, "dropped_queue_full") == 3
        drops = [line for line in logged.lines if line.startswith("Dropped webhook")]
        assert len(drops) == 1 and "its queue is full (--webhook-queue)" in drops[0]
        await stop_server(server)
        summed = [line for line in logged.lines if line.startswith("Dropped ")
                  and "more webhooks" in line and "queue is full" in line]
        assert len(summed) == 1, logged.lines
    finally:
        await receiver.stop()


@pytest_twisted.ensureDeferred
async def test_shutdown_does_not_wait_on_a_receiver_that_never_answers(daemons, logged):
    """
    A receiver that takes the request and never answers: the daemon stops
    all the same, and says what it dropped.
    """
    receiver = WebhookReceiver(hang=True)
    try:
        server = await daemons(**{"webhook-url": receiver.url})
        await server.connect("alice")
        await until(lambda: receiver.attempts)
        stopped = Deferred.fromCoroutine(stop_server(server))
        stopped.addTimeout(10, reactor)
        await stopped
        assert [line for line in logged.lines if line.startswith("Dropped webhook")
                and "the daemon stopped" in line]
    finally:
        await receiver.stop()


@pytest_twisted.ensureDeferred
async def test_an_endpoint_that_keeps_failing_is_one_sentry_event(daemons):
    """
    Three events to a receiver that answers 503 every time: many failed
    attempts, one Sentry event (its URL without the query's token).
    """
    from ..support.sentry_receiver import SentryReceiver

    sentry = SentryReceiver()
    receiver = WebhookReceiver(failures=10**6)
    try:
        server = await daemons({"SENTRY_DSN": sentry.dsn}, **{"webhook-url": receiver.url})
        await server.connect_many("alice", "bob", "carol")
        await counted_at_least(server, "failed", 4)
        await stop_server(server)
        (event,) = sentry.events(operation="webhook")
        assert event["message"] == "A webhook endpoint fails"
        assert event["extra"]["why"] == "HTTP 503"
        assert event["extra"]["url"].endswith("/hooks")
        assert "t0ps3cret" not in str(sentry.items)
        assert len(receiver.attempts) >= 4 and not receiver.received
    finally:
        await receiver.stop()
        await sentry.stop()


@pytest_twisted.ensureDeferred
async def test_a_killed_daemons_users_are_told_gone_by_the_one_that_reaps_them(
        receiver, own_redis, tmp_path):
    """
    A daemon killed with -9 sends nothing more; the daemon that reaps its
    user posts user.disconnected (where the user was is not known: null)
    and, once the grace of the user's call is over, the end of the call
    its partner here was in, with its length.
    """
    from ..support.daemons import Spawned
    from ..support.wsclient import connect

    victim = Spawned(own_redis.port, tmp_path, "--node-ttl", "1")
    survivor = None
    try:
        ghost = await connect(victim.port, "ghost", "r", origin=None)
        ghost.send({"type": "user_available_webrtc"})
        await ghost.quiet()
        await own_redis.becomes("1", "SCARD", "available:webrtc")
        survivor = await redis_daemon(own_redis.port, ENV, **{
            "webhook-url": receiver.url, "node-ttl": "1", "call-grace": "0.5"})
        alice = await survivor.connect("alice")
        await alice.request({"type": "request_random_peer"}, "assign_role")
        victim.kill()
        await alice.expect("hangup")
        (gone,) = await receiver.event("user.disconnected")
        assert gone["data"] == {"userId": "ghost", "address": None, "daemon": None}
        (ended,) = await receiver.event("match.ended")
        assert ended["data"]["users"] == ["ghost", "alice"]
        assert ended["data"]["reason"] == "disconnected" and ended["data"]["duration"] >= 0
        assert [e["data"]["userId"] for e in receiver.events("user.connected")] == ["alice"]
    finally:
        victim.kill()
        if survivor is not None:
            await stop_server(survivor)


@pytest_twisted.ensureDeferred
async def test_https_with_the_receivers_certificate_verified(daemons, tmp_path, monkeypatch):
    """
    An https URL: a certificate of a CA the daemon does not trust is
    refused (failed attempts, nothing sent); trusted, the webhook arrives.
    """
    from ..support.tls import make_ca_and_server

    ca, cert, key = make_ca_and_server(tmp_path, "localhost")
    receiver = WebhookReceiver(tls=(cert, key))
    try:
        server = await daemons(**{"webhook-url": receiver.url})
        await server.connect("alice")
        await counted_at_least(server, "failed", 1)
        assert not receiver.attempts
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        trusting = await daemons(**{"webhook-url": receiver.url})
        await trusting.connect("bob")
        (event,) = await receiver.event("user.connected")
        assert event["data"]["userId"] == "bob"
    finally:
        await receiver.stop()


@pytest.mark.parametrize("daemons", ["memory", "redis"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_block_ends_the_match_as_blocked_and_a_ban_is_told(receiver, daemons):
    """
    The blocked user hears only that its call ended; the app's backend
    hears why (reason blocked, ended by the blocker). A ban set through
    the server API is user.banned.
    """
    server = await daemons({"ALEATORIA_API_TOKEN": TOKEN}, **{
        "webhook-url": receiver.url, "api-port": "tcp:0:interface=127.0.0.1"})
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    await pair(alice, bob)
    await alice.request({"type": "block_user", "payload": {"userId": "bob"}}, "user_blocked")
    assert (await bob.expect("hangup"))["payload"] == {"reason": "ended"}
    (ended,) = await receiver.event("match.ended")
    assert {k: v for k, v in ended["data"].items() if k != "duration"} == {
        "users": ["alice", "bob"], "endedBy": "alice", "reason": "blocked"}
    assert ended["data"]["duration"] >= 0

    status, _, ban = await call(server, "POST", "/api/v1/bans",
                                {"address": "198.51.100.0/24", "seconds": 60, "reason": "spam"})
    assert status == 201
    (banned,) = await receiver.event("user.banned")
    assert banned["data"] == {"banId": ban["id"], "userId": None, "address": "198.51.100.0/24",
                              "seconds": 60, "reason": "spam"}


@pytest.mark.parametrize("daemons", ["memory", "redis"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_a_report_is_report_created_whole_and_its_call_ends_as_reported(
        receiver, daemons):
    """The webhook carries the report as the server API shows it: evidence included."""
    server = await daemons({"ALEATORIA_API_TOKEN": TOKEN}, **{
        "webhook-url": receiver.url, "api-port": "tcp:0:interface=127.0.0.1"})
    alice, bob = await server.connect_many("alice", "bob")
    await available(bob)
    await pair(alice, bob)
    bob.send({"type": "chat_message", "toUser": "alice", "payload": {"content": "rude"}})
    await alice.expect("chat_message")
    await bob.expect("chat_message")
    answer = await alice.request({"type": "report_user", "payload": {
        "userId": "bob", "reason": "harassment", "details": "said rude"}}, "user_reported")
    (created,) = await receiver.event("report.created")
    status, _, shown = await call(
        server, "GET", f"/api/v1/reports/{answer['payload']['reportId']}")
    assert status == 200 and created["data"] == shown
    assert [m["content"] for m in created["data"]["messages"]] == ["rude"]
    (ended,) = await receiver.event("match.ended")
    assert (ended["data"]["reason"], ended["data"]["endedBy"]) == ("reported", "alice")


@pytest.mark.parametrize("daemons", ["memory", "redis"], indirect=True)
@pytest_twisted.ensureDeferred
async def test_match_started_says_the_segment_and_common_interests(receiver, daemons):
    """The token's segment and the interests the two share, as the match began."""
    from ..integration.test_segments import SECRET, token

    server = await daemons({"ALEATORIA_JWT_SECRET": SECRET}, **{"webhook-url": receiver.url})
    alice = await server.connect("alice", extra=f"&token={token('alice', 'teen')}")
    bob = await server.connect("bob", extra=f"&token={token('bob', 'teen')}")
    bob.send({"type": "user_available_webrtc", "payload": {"interests": ["Chess", "golf"]}})
    await bob.quiet()
    alice.send({"type": "request_random_peer", "payload": {"interests": ["chess"]}})
    await alice.expect("assign_role")
    (started,) = await receiver.event("match.started")
    assert started["data"] == {
        "users": [{"userId": "alice", "role": "impolite"}, {"userId": "bob", "role": "polite"}],
        "segment": "teen", "commonInterests": ["chess"]}
