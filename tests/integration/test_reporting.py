"""
What reaches Sentry, read from what sentry-sdk actually sends to a real
HTTP endpoint (issue: observability).
"""

import gc
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import fail, maybeDeferred
from twisted.logger import Logger

from ..support.lifecycle_helpers import until
from ..support.servers import start_server, stop_server
from ..support.wsclient import connect


@pytest_twisted.ensureDeferred
async def test_startup_message(receiver, reporting):
    """With a DSN, start-up sends one info message, with environment and release."""
    await reporting(env={"SENTRY_ENV": "staging", "SENTRY_RELEASE": "r1"})
    await until(lambda: receiver.events())
    (event,) = receiver.events()
    assert event["message"] == "Aleatoria backend started successfully"
    assert event["level"] == "info"
    assert event["environment"] == "staging" and event["release"] == "r1"


@pytest_twisted.ensureDeferred
async def test_unknown_type_with_the_users_own_context(receiver, reporting):
    """
    An event about alice carries her user, her tags and her breadcrumbs --
    none of bob's, though he was busy at the same time.
    """
    server = await reporting()
    alice, bob = await server.connect_many("alice", "bob")
    bob.send({"type": "user_available_webrtc"})
    await bob.request({"type": "join_room", "room": "bobs"}, "room_joined")
    await alice.request({"type": "join_room", "room": "alices"}, "room_joined")
    await alice.request({"type": "whatever"}, "error")
    event = await receiver.event(operation="unknown_message_type")
    assert event["tags"]["userId"] == "alice"
    assert event["tags"]["messageType"] == "whatever"
    assert event["tags"]["room"] == "home-alice"
    assert event["user"] == {"id": "alice", "ip_address": "127.0.0.1"}
    crumbs = [(c["category"], c["message"], c.get("data", {}))
              for c in event["breadcrumbs"]["values"]]
    assert ("room", "Joined room", {"room": "alices", "members": 1}) in crumbs
    assert crumbs[0][:2] == ("room", "Joined room") or crumbs[0][:2] == ("websocket", "Connected")
    assert not [c for c in crumbs if "bobs" in str(c) or c[1] == "User marked as available"]


@pytest_twisted.ensureDeferred
async def test_handler_exception_is_reported_and_contained(receiver, reporting):
    """
    A bug while handling one message is reported with its traceback from our
    code; the client gets an error and its connection goes on.
    """
    server = await reporting()
    alice = await server.connect("alice")

    def broken(*args):
        raise RuntimeError("boom")

    server.backend.streams.room_history = broken
    error = await alice.request({"type": "get_recent_messages", "room": "home-alice"}, "error")
    assert error["payload"]["code"] == "unavailable"
    await alice.request({"type": "get_rooms"}, "rooms_list")
    event = await receiver.event(operation="handle_message")
    assert event["tags"]["component"] == "hub" and event["tags"]["userId"] == "alice"
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "boom"
    files = [f["filename"] for f in exception["stacktrace"]["frames"]]
    assert any("aleatoria/domain/" in f for f in files)
    assert any(f.endswith("tests/integration/test_reporting.py") for f in files)


@pytest_twisted.ensureDeferred
async def test_store_failure_is_reported_with_operation(receiver, reporting):
    """
    A store write that fails is reported (operation memory_post_room)
    in the sender's scope; secrets in it are scrubbed before sending.
    """
    server = await reporting(env={"VALKEY_PASSWORD": "hunter2-secret"})
    alice = await server.connect("alice", room="r")
    server.backend.streams.post_room = lambda *args: fail(
        RuntimeError("auth hunter2-secret rejected; token=abc.def eyJhbGciOi.eyJzdWIi.sig")
    )
    alice.send({"type": "chat_message", "room": "r", "payload": {"content": "private words"}})
    await alice.expect("chat_message", skip=("error",))
    event = await receiver.event(operation="memory_post_room")
    assert event["tags"]["userId"] == "alice" and event["tags"]["component"] == "store"
    text = str(event)
    assert "hunter2-secret" not in text and "eyJhbGciOi" not in text and "abc.def" not in text
    assert "[Filtered]" in text
    assert "private words" not in str(receiver.items)


@pytest_twisted.ensureDeferred
async def test_refusals_are_reported(receiver, reporting):
    """Room sends without membership and signaling without toUser are reported."""
    server = await reporting()
    alice = await server.connect("alice")
    await alice.request({"type": "chat_message", "room": "elsewhere",
                         "payload": {"content": "x"}}, "error")
    await alice.request({"type": "webrtc_offer", "payload": {"sdp": "secret sdp"}}, "error")
    unauthorized = await receiver.event(operation="unauthorized_room_send")
    assert unauthorized["tags"]["room"] == "elsewhere"
    routing = await receiver.event(operation="webrtc_routing")
    assert routing["tags"]["messageType"] == "webrtc_offer"
    assert "secret sdp" not in str(receiver.items)


@pytest_twisted.ensureDeferred
async def test_unparsable_frame_with_raw_data_cut_to_1_kib(receiver, reporting):
    """A frame that is not JSON is reported with at most 1 KiB of it."""
    server = await reporting()
    alice = await server.connect("alice")
    alice.send("{" + "x" * 5000)
    await alice.expect("error_response")
    event = await receiver.event(operation="parse_message")
    assert len(event["extra"]["raw"]) == 1024
    assert event["tags"]["details"].startswith("JSON is malformed")


@pytest_twisted.ensureDeferred
async def test_refused_upgrade_and_unexpected_close(receiver, reporting):
    """A refused handshake and a close with an odd code are reported."""
    server = await reporting()
    with pytest.raises(ConnectionError):
        await connect(server.port, "mallory", origin="http://evil.example")
    refused = await receiver.event(operation="websocket_upgrade")
    assert refused["tags"]["userId"] == "mallory"
    assert refused["tags"]["remoteAddress"] == "127.0.0.1"
    assert refused["tags"]["reason"] == "origin not allowed"

    alice = await server.connect("alice")
    alice._protocol.sendClose(4000, "client bug")
    await alice.closed()
    closed = await receiver.event(operation="websocket_close")
    assert closed["tags"]["closeCode"] == "4000" and closed["tags"]["userId"] == "alice"


@pytest_twisted.ensureDeferred
async def test_transactions_with_store_spans(receiver, reporting):
    """Each handled message is a transaction named by its type; store calls are spans."""
    server = await reporting()
    alice = await server.connect("alice", room="r")
    await alice.request({"type": "get_recent_messages", "room": "r"}, "recent_messages")
    await until(lambda: any(t["transaction"] == "get_recent_messages"
                            for t in receiver.transactions()))
    (txn,) = [t for t in receiver.transactions() if t["transaction"] == "get_recent_messages"]
    assert txn["contexts"]["trace"]["op"] == "websocket.message"
    assert [s["description"] for s in txn["spans"]] == ["room_messages"]
    assert txn["tags"]["userId"] == "alice"


@pytest_twisted.ensureDeferred
async def test_logged_failures_reach_sentry_once(receiver, reporting, lost_errors):
    """
    A log.failure anywhere, and an unhandled error in a Deferred, each reach
    Sentry once, as an exception with its traceback. (The unhandled error is
    made on purpose: the test claims it from the gate against lost errors.)
    """
    await reporting()
    try:
        raise ValueError("logged")
    except ValueError:
        Logger(namespace="somewhere").failure("it broke")
    d = maybeDeferred(lambda: {}["unhandled"])
    del d
    gc.collect()
    await until(lambda: len([e for e in receiver.events() if "exception" in e]) >= 2)
    values = [e["exception"]["values"][0] for e in receiver.events() if "exception" in e]
    assert sorted(v["type"] for v in values) == ["KeyError", "ValueError"]
    assert all(v["stacktrace"]["frames"] for v in values)
    (lost,) = lost_errors.take()
    assert "KeyError" in lost


@pytest_twisted.ensureDeferred
async def test_nothing_is_sent_without_a_dsn(receiver):
    """
    Without SENTRY_DSN, failures stay in the log and nothing is sent -- even
    with an SDK live in the process and pointed at the receiver, which any
    capture would reach.
    """
    import sentry_sdk
    from twisted.internet.threads import deferToThread

    sentry_sdk.init(dsn=receiver.dsn, default_integrations=False)
    try:
        server = await start_server()
        try:
            alice = await server.connect("alice")
            await alice.request({"type": "whatever"}, "error")
            alice.send("not json")
            await alice.expect("error_response")
            server.backend.streams.room_history = lambda *args: fail(RuntimeError("store bug"))
            await alice.request({"type": "get_recent_messages", "room": "home-alice"}, "error")
        finally:
            await stop_server(server)
        await deferToThread(sentry_sdk.get_client().flush, 2)
        assert receiver.items == []
        sentry_sdk.capture_message("control: the SDK does reach the receiver")
        await deferToThread(sentry_sdk.get_client().flush, 2)
        assert [e["message"] for e in receiver.events()] == [
            "control: the SDK does reach the receiver"
        ]
    finally:
        await deferToThread(sentry_sdk.get_client().close, 2)


def test_no_dsn_in_the_code():
    """The DSN in old documentation belongs to someone else: none is in ours."""
    root = Path(__file__).parents[2]
    texts = [*root.glob("aleatoria/**/*.py"), *root.glob("aleatoria/http/demo/*"),
             root / "README.rst", *root.glob("docs/**/*.rst"), *root.glob("clients/js/*.*")]
    for path in texts:
        text = path.read_text()
        assert "ingest.sentry.io" not in text and "@o" not in text, path


@pytest_twisted.ensureDeferred
async def test_errback_adapter_reports_and_handles(receiver, reporting):
    """
    report.errback(operation) reports a Deferred's failure with its
    traceback, then handles it.
    """
    server = await reporting()
    report = server.service.getServiceNamed("reporter").daemon
    d = maybeDeferred(lambda: 1 / 0)
    d.addErrback(report.errback("custom_operation", room="r1"))
    assert d.result is None
    event = await receiver.event(operation="custom_operation")
    assert event["tags"]["room"] == "r1"
    assert event["exception"]["values"][0]["type"] == "ZeroDivisionError"
    assert event["exception"]["values"][0]["stacktrace"]["frames"]


@pytest_twisted.ensureDeferred
async def test_redis_unreachable_then_connected(receiver, reporting, tmp_path):
    """
    Redis down at start is a warning event (operation redis_connect); its
    arrival later is a breadcrumb on the daemon's trail.
    """
    from ..support.redis_server import RedisServer

    redis = RedisServer(tmp_path)
    server = await reporting(**{"store": "redis", "redis-host": "127.0.0.1",
                                "redis-port": str(redis.port), "redis-timeout": "0.5"})
    try:
        warning = await receiver.event(operation="redis_connect")
        assert warning["level"] == "warning" and warning["message"] == "Redis unreachable"
        redis.start()
        await until(lambda: server.backend.connected)
        with pytest.raises(ConnectionError):
            await connect(server.port, "mallory", origin="http://evil.example")
        refused = await receiver.event(operation="websocket_upgrade")
        crumbs = [(c["category"], c["message"]) for c in refused["breadcrumbs"]["values"]]
        assert ("redis", "Redis connected successfully") in crumbs
    finally:
        await stop_server(server)
        redis.stop()


@pytest_twisted.ensureDeferred
async def test_metrics_move_as_messages_flow(receiver, reporting):
    """/metrics, scraped with a real client, counts what happens."""
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    server = await reporting()

    async def scrape():
        response = await Agent(reactor).request(b"GET", server.url("/metrics"))
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
        text = (await readBody(response)).decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}

    before = await scrape()
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    alice.send({"type": "chat_message", "room": "r", "payload": {"content": "x"}})
    await alice.expect("chat_message")
    await bob.expect("chat_message")
    bob.send({"type": "user_available_webrtc"})
    await bob.quiet()
    await alice.request({"type": "request_random_peer"}, "assign_role")
    await alice.request({"type": "nope"}, "error")
    after = await scrape()

    assert after["aleatoria_connections"] == 2 and after["aleatoria_rooms"] == 1
    assert after['aleatoria_messages_received_total{type="chat_message"}'] == 1
    assert after['aleatoria_messages_sent_total{type="chat_message"}'] == 2
    assert after['aleatoria_errors_total{code="unknown_type"}'] == 1
    assert after["aleatoria_pairings_total"] == 1
    assert after['aleatoria_store_seconds_count{operation="pair"}'] == 1
    assert after['aleatoria_sentry_events_total{kind="event"}'] > before.get(
        'aleatoria_sentry_events_total{kind="event"}', 0)


@pytest_twisted.ensureDeferred
async def test_write_failure_is_reported(receiver, reporting):
    """A write that raises is reported for that connection; the daemon goes on."""
    server = await reporting()
    alice, bob = await server.connect_many("alice", "bob")
    protocol = server.hub.connections.get("bob")

    def refuse(data):
        raise OSError("socket gone")

    protocol.transport.write = refuse
    alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {}})
    await alice.quiet()
    event = await receiver.event(operation="websocket_write")
    assert event["tags"]["userId"] == "bob"
    assert event["exception"]["values"][0]["value"] == "socket gone"


@pytest_twisted.ensureDeferred
async def test_shutdown_delivers_what_was_just_reported(receiver, reporting):
    """Events captured just before shutdown are sent before it completes."""
    server = await reporting()
    alice = await server.connect("alice")
    await alice.request({"type": "last-words"}, "error")
    await stop_server(server)
    assert receiver.events(messageType="last-words")


def test_a_failing_timer_keeps_running():
    """A timer function that raises is reported and its LoopingCall goes on."""
    from twisted.internet.task import Clock, LoopingCall

    from aleatoria.ops.reporting import Reporter, guarded

    calls = []

    def flaky():
        calls.append(1)
        raise RuntimeError("once")

    clock = Clock()
    loop = LoopingCall(guarded(flaky, Reporter().daemon, "test_timer"))
    loop.clock = clock
    loop.start(1)
    clock.advance(1)
    clock.advance(1)
    assert len(calls) == 3 and loop.running
    loop.stop()


@pytest_twisted.ensureDeferred
async def test_every_breadcrumb_lands_in_the_right_trail(receiver, reporting):
    """
    Alice's trail holds a breadcrumb for each thing she did, in order, and
    nothing of bob's; his trail holds his side.
    """
    server = await reporting()
    alice, bob = await server.connect_many("alice", "bob", room="r")
    await alice.expect("user_joined")
    await alice.request({"type": "join_room", "room": "second"}, "room_joined")
    await alice.request({"type": "leave_room", "room": "second"}, "room_left")
    alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "x"}})
    await alice.expect("chat_message")
    alice.send({"type": "chat_message", "room": "r", "payload": {"content": "x"}})
    await alice.expect("chat_message")
    alice.send({"type": "user_available_webrtc"})
    alice.send({"type": "user_unavailable_webrtc"})
    await alice.request({"type": "request_random_peer"}, "no_peer_available")
    bob.send({"type": "user_available_webrtc"})
    await bob.expect("chat_message")
    await bob.expect("chat_message")
    await bob.quiet()
    await alice.request({"type": "request_random_peer"}, "assign_role")
    alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {}})
    await bob.expect("assign_role")
    await bob.expect("webrtc_offer")
    alice._protocol.sendClose(4000, "bye")
    event = await receiver.event(operation="websocket_close", userId="alice")

    crumbs = [(c["category"], c["message"]) for c in event["breadcrumbs"]["values"]]
    assert crumbs == [
        ("websocket", "Connected"), ("room", "Joined room"),
        ("room", "Joined room"), ("room", "Left room"),
        ("message", "Direct message sent"), ("message", "Room message broadcast"),
        ("webrtc", "User marked as available"), ("webrtc", "User marked as unavailable"),
        ("webrtc", "Random peer requested"), ("webrtc", "No peer available"),
        ("webrtc", "Random peer requested"), ("webrtc", "Peer pairing made"),
        ("webrtc", "Signaling relayed"), ("websocket", "Disconnected"),
    ]
    details = {c["message"]: c.get("data", {}) for c in event["breadcrumbs"]["values"]}
    assert details["Disconnected"] == {"rooms": ["r"], "clients": 1}
    assert details["Room message broadcast"] == {"room": "r", "members": 2}


@pytest_twisted.ensureDeferred
async def test_slow_client_is_reported(receiver, reporting):
    """A client dropped for not reading is reported (operation slow_consumer)."""
    server = await reporting(env={"SENTRY_SAMPLE_RATE": "0"}, **{"outbound-messages": "8"})
    stalled, sender = await server.connect_many("stalled", "sender", room="flood")
    await stalled.expect("user_joined")
    stalled._protocol.transport.pauseProducing()
    for _ in range(20000):
        sender.send({"type": "chat_message", "room": "flood", "payload": {"content": "z" * 4000}})
        if (await sender.next())["type"] == "user_left":
            break
    event = await receiver.event(operation="slow_consumer")
    assert event["tags"]["userId"] == "stalled"
    assert event["extra"]["messages"] == 9
    stalled._protocol.transport.resumeProducing()


def test_trace_budget_caps_transactions_per_second():
    """However many messages, at most TRACES_PER_SECOND are traced each second."""
    from aleatoria.ops.tracing import TraceBudget

    now = [0.0]
    budget = TraceBudget(1.0, 10, now=lambda: now[0], rng=lambda: 0.5)
    assert sum(budget({}) for _ in range(1000)) == 10
    now[0] += 0.5
    assert sum(budget({}) for _ in range(1000)) == 5
    half = TraceBudget(0.4, 10, now=lambda: now[0], rng=iter([0.1, 0.9] * 50).__next__)
    assert sum(half({}) for _ in range(20)) == 10


def test_a_failure_is_told_once_a_minute_per_kind():
    """
    The first failure of a kind (operation, error, message type) in a
    minute is told in full; the rest are counted, and summed up in one
    line when the minute is over (issue: attacks, item 3).
    """
    from twisted.internet.task import Clock
    from twisted.logger import capturedLogs, formatEvent

    from aleatoria.ops.budgets import ReportBudget

    clock, withheld = Clock(), []
    budget = ReportBudget(clock, withheld.append)
    kind = ("redis_resume", "ResponseError", None)
    with capturedLogs() as events:
        assert budget.failure(kind)
        assert not any(budget.failure(kind) for _ in range(999))
        assert budget.failure(("redis_resume", "TimeoutError", None))
        assert budget.failure(("handle_message", "ResponseError", "resume"))
        assert not budget.failure(("handle_message", "ResponseError", "resume"))
        assert [formatEvent(e) for e in events] == []
        clock.advance(60)
        assert budget.failure(kind)
    assert sorted(formatEvent(e) for e in events) == [
        "1 more failures of handle_message (ResponseError, resume) in the last 60 s, "
        "past the one logged and reported",
        "999 more failures of redis_resume (ResponseError) in the last 60 s, "
        "past the one logged and reported",
    ]
    assert withheld == ["redis_resume"] * 999 + ["handle_message"]


def test_client_faults_are_told_within_budgets_of_connection_address_and_daemon():
    """
    A client's faults are told within the budget of its connection (3, then
    1 a minute), its address (10, then 5 a minute) and the daemon (60,
    then 1 a second); past them, counted and summed up in one line a
    minute per operation.
    """
    from twisted.internet.task import Clock
    from twisted.logger import capturedLogs, formatEvent

    from aleatoria.ops.budgets import ReportBudget

    clock, withheld = Clock(), []
    budget = ReportBudget(clock, withheld.append)
    with capturedLogs() as events:
        one = budget.connection()
        assert [budget.fault("parse_message", one, "10.0.0.1") for _ in range(5)] == [
            True, True, True, False, False]
        many = [budget.fault("parse_message", budget.connection(), "10.0.0.1")
                for _ in range(20)]
        assert sum(many) == 7
        everywhere = [budget.fault("websocket_upgrade", None, f"10.0.1.{n}")
                      for n in range(100)]
        assert sum(everywhere) == 60 - 10
        clock.advance(60)
        assert budget.fault("parse_message", one, "10.0.0.1")
        assert not budget.fault("parse_message", one, "10.0.0.1")
    assert sorted(formatEvent(e) for e in events) == [
        "15 more client faults of parse_message in the last 60 s, past the reporting "
        "budget: counted, not logged or reported one by one",
        "50 more client faults of websocket_upgrade in the last 60 s, past the "
        "reporting budget: counted, not logged or reported one by one",
    ]
    assert len(withheld) == 2 + 13 + 50 + 1


def test_what_was_withheld_is_summed_up_when_the_daemon_stops():
    """Stopping sums up every open window at once, and leaves no timer behind."""
    from twisted.internet.task import Clock
    from twisted.logger import capturedLogs, formatEvent

    from aleatoria.ops.budgets import ReportBudget

    clock = Clock()
    budget = ReportBudget(clock)
    with capturedLogs() as events:
        assert [budget.failure(("redis_pair", "ResponseError", None)) for _ in range(3)] == [
            True, False, False]
        assert budget.failure(("redis_offer", "ResponseError", None))
        one = budget.connection()
        assert sum(budget.fault("rate_limit", one) for _ in range(5)) == 3
        budget.stop()
    assert sorted(formatEvent(e).split(" in the last")[0] for e in events) == [
        "2 more client faults of rate_limit", "2 more failures of redis_pair (ResponseError)"]
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_flood_of_bad_frames_is_reported_within_budget(receiver, reporting):
    """
    Twenty unparsable frames, then twenty unknown types, from one
    connection: each is answered as before, but only three reach Sentry
    (the connection's budget), and of five bugs in handling one message
    type one: the rest are counted in aleatoria_reports_withheld_total.
    """
    from twisted.internet import reactor
    from twisted.logger import capturedLogs
    from twisted.web.client import Agent, readBody

    server = await reporting(env={"SENTRY_SAMPLE_RATE": "0"})
    alice = await server.connect("alice")

    def broken(*args):
        raise RuntimeError("boom")

    server.backend.streams.room_history = broken
    with capturedLogs() as events:
        for _ in range(20):
            alice.send("{" + "x" * 2000)
            answer = await alice.expect("error_response")
            assert answer["payload"]["details"].startswith("JSON is malformed")
        for _ in range(20):
            error = await alice.request({"type": "whatever"}, "error")
            assert error["payload"]["code"] == "unknown_type"
        for _ in range(5):
            error = await alice.request({"type": "get_recent_messages", "room": "home-alice"},
                                        "error")
            assert error["payload"]["code"] == "unavailable"
    response = await Agent(reactor).request(b"GET", server.url("/metrics"))
    metrics = (await readBody(response)).decode()
    await stop_server(server)
    assert len(receiver.events(operation="parse_message")) == 3
    assert receiver.events(operation="unknown_message_type") == []
    assert len(receiver.events(operation="handle_message")) == 1
    assert len([e for e in events if "log_failure" in e]) == 1
    assert len([e for e in events if "Malformed frame" in e.get("log_format", "")]) == 3
    for operation, count in (("parse_message", 17), ("unknown_message_type", 20),
                             ("handle_message", 4)):
        assert f'aleatoria_reports_withheld_total{{operation="{operation}"}} {count}.0' in metrics
