"""
The log of a scripted session, as an operator reads it (issue: operator,
item 5): one start-up summary, one line per event naming the user and the
client's address, refusals one line each with the reason, calls started
and ended, and no library chatter; and the same events as JSON lines.
"""

import json
import re

import pytest_twisted

from ..support.daemons import Spawned
from ..support.rawhttp import exchange, upgrade_request
from ..support.wsclient import connect


async def scripted_session(daemon):
    """
    A refused handshake, a plain GET on /ws, two users who chat and are
    paired, a skip-free call that ends when one disconnects.
    """
    from twisted.internet.threads import deferToThread

    status, _, _ = await deferToThread(
        exchange, daemon.port, upgrade_request("userId=mallory", "http://evil.example"))
    assert " 403 " in status
    status, _, _ = await deferToThread(
        exchange, daemon.port, b"GET /ws?userId=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert " 426 " in status
    alice = await connect(daemon.port, "alice", "Lobby", origin=None)
    bob = await connect(daemon.port, "bob", "Lobby", origin=None)
    await alice.expect("user_joined")
    alice.send({"type": "chat_message", "room": "Lobby", "payload": {"content": "hi"}})
    await bob.expect("chat_message")
    await alice.expect("chat_message")
    alice.send({"type": "user_available_webrtc"})
    await alice.request({"type": "get_rooms"}, "rooms_list")
    await bob.request({"type": "request_random_peer"}, "assign_role")
    await alice.expect("assign_role")
    await bob.close()
    hangup = await alice.expect("hangup", skip=("user_left",))
    assert hangup["payload"] == {"reason": "disconnected"}
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_the_text_log_of_a_session(tmp_path):
    daemon = Spawned(None, tmp_path)
    try:
        await scripted_session(daemon)
    finally:
        log = daemon.stop()
    lines = log.splitlines()

    def one(pattern):
        found = [line for line in lines if re.search(pattern, line)]
        assert len(found) == 1, (pattern, log)
        return found[0]

    summary = one(r"Aleatoria \S+ starting on tcp:0:interface=127.0.0.1: store memory")
    for part in ("identity the userId asked for", "20.0/s (burst 40) messages",
                 "100 connections per address", "Sentry off",
                 "ICE none (calls connect only where both NATs allow)"):
        assert part in summary, part
    one(r"No ALEATORIA_JWT_SECRET or --jwt-public-key-file")
    one(r"Listening on 127\.0\.0\.1:\d+$")
    refusal = one(r"mallory")
    assert re.search(r"Refused handshake from 127\.0\.0\.1 \(userId 'mallory', "
                     r"origin 'http://evil\.example'\): .*origin", refusal), refusal
    one(r"alice connected from 127\.0\.0\.1, room 'Lobby'; 1 online")
    one(r"bob connected from 127\.0\.0\.1, room 'Lobby'; 2 online")
    one(r"Paired bob with alice")
    one(r"Call of bob and alice ended: bob disconnected")
    one(r"bob disconnected from 127\.0\.0\.1; 1 online")
    for line in lines:
        if line.strip():
            assert re.match(r"\S+ \[aleatoria[.\w]*#\w+\] ", line), line
    assert "hi" not in re.findall(r"\] (.*)", log)  # no message text


@pytest_twisted.ensureDeferred
async def test_a_shutdown_is_in_the_log(tmp_path):
    """
    SIGTERM with a client connected: the log says the daemon is closing
    its connections and releasing their sessions, and that it did (a new
    user's report: a shutdown left no line at all).
    """
    daemon = Spawned(None, tmp_path)
    try:
        alice = await connect(daemon.port, "alice", "Lobby", origin=None)
        await alice.request({"type": "get_rooms"}, "rooms_list")
    finally:
        log = daemon.stop()
    assert (await alice.closed())[0] == 1001
    closing = log.index("Shutting down: closing 1 connections (1001) and releasing their sessions")
    assert log.index("Every session released; leaving the other daemons") > closing


@pytest_twisted.ensureDeferred
async def test_the_json_log_of_a_session(tmp_path):
    daemon = Spawned(None, tmp_path, "--log-format", "json")
    try:
        await scripted_session(daemon)
    finally:
        log = daemon.stop()
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all({"time", "level", "source", "message"} <= set(r) for r in records)
    (joined,) = [r for r in records if r["message"].startswith("alice connected")]
    assert joined["user"] == "alice" and joined["peer"] == "127.0.0.1"
    assert joined["level"] == "info" and joined["source"] == "aleatoria.connections"
    (refused,) = [r for r in records if "mallory" in r["message"]]
    assert refused["source"] == "aleatoria.edge.protocol.ClientProtocol"
    assert all(r["source"].startswith("aleatoria") for r in records), records


def test_a_json_line_stays_one_line_whatever_its_fields_hold(tmp_path):
    """
    U+2028, U+2029 and U+0085, which JSON leaves as they are but
    splitlines() takes for line ends, are escaped: one event, one line
    (issue: attacks, item 11).
    """
    from twisted.logger import Logger

    from aleatoria.ops.logs import observer

    path = tmp_path / "aleatoria.log"
    sink = observer("json", str(path))
    breaking = "one\u2028two\u2029three\x85four é"
    Logger(namespace="aleatoria.test", observer=sink).info("{room}", room=breaking)
    (line,) = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["room"] == breaking and record["message"] == breaking
    assert "é" in line


def test_twisted_webs_own_lines_of_our_channel_are_a_librarys():
    """Its "Timing out client" is info of twisted.web's, not ours: it stays out of the log."""
    from twisted.logger import LogLevel, PredicateResult, globalLogPublisher

    from aleatoria.http.channels import _Channel
    from aleatoria.ops.logs import wanted

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        _Channel()._log.info("Timing out client: {peer}", peer="127.0.0.1")
    finally:
        globalLogPublisher.removeObserver(events.append)
    (event,) = [e for e in events if e.get("log_format", "").startswith("Timing out")]
    assert event["log_level"] == LogLevel.info
    assert wanted(event) == PredicateResult.no
