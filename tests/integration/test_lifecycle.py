"""
Connections over time: keepalive, shutdown, and what the log says.
"""

import subprocess

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import formatEvent, globalLogPublisher

from ..support.lifecycle_helpers import until
from ..support.servers import start_server, stop_server


@pytest_twisted.ensureDeferred
async def test_silent_client_is_dropped_by_keepalive():
    """
    A client that stops answering pings is dropped once the idle timeout
    passes; one that answers stays. (Autobahn batches its timers into
    buckets, so the settings leave whole seconds of slack.)
    """
    server = await start_server(**{"ping-interval": "1", "idle-timeout": "3"})
    try:
        alice, bob = await server.connect_many("alice", "bob")
        alice._protocol.transport.pauseProducing()
        await until(lambda: "alice" not in server.hub.connections)
        assert "bob" in server.hub.connections
        await bob.quiet()
        alice._protocol.transport.resumeProducing()
        await alice.closed()
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_clients_with_1001_and_cleans_up():
    """Stopping the service closes every client with 1001 and empties rooms and pool."""
    server = await start_server()
    alice, bob = await server.connect_many("alice", "bob", room="r")
    bob.send({"type": "user_available_webrtc"})
    await bob.quiet()
    await server.service.stopService()
    assert (await alice.closed())[0] == 1001
    assert (await bob.closed())[0] == 1001
    assert server.hub.connection_count == 0
    assert server.hub.room_names() == []
    assert await server.backend.matchmaking.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_log_lines_name_users_but_never_contents(server):
    """
    Connects, joins, pairings and disconnects are logged with the user id and
    peer address; chat text and SDP never reach the log.
    """
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        alice, bob = await server.connect_many("alice", "bob", room="r")
        await alice.expect("user_joined")
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "SECRET-TEXT"}})
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "SECRET-DM"}})
        alice.send({"type": "webrtc_offer", "toUser": "bob", "payload": {"sdp": "SECRET-SDP"}})
        bob.send({"type": "user_available_webrtc"})
        alice.send({"type": "request_random_peer"})
        await alice.expect("chat_message")
        await alice.expect("chat_message")
        await alice.expect("assign_role")
        await bob.close()
        await until(lambda: "bob" not in server.hub.connections)
    finally:
        globalLogPublisher.removeObserver(events.append)
    text = [formatEvent(e) for e in events]
    assert any("bob connected from 127.0.0.1" in line for line in text), text
    assert any("alice connected from 127.0.0.1, room 'r'" in line for line in text)
    assert not any("alice joined" in line for line in text)  # the connect line says it
    assert any("Paired alice with bob" in line for line in text)
    assert any("bob disconnected from 127.0.0.1" in line for line in text)
    assert not [line for line in text if "SECRET" in line]


@pytest_twisted.ensureDeferred
async def test_busy_port_stops_start_up():
    """A port already in use ends start-up with one clear line, not a deaf daemon."""
    from twisted.internet.protocol import Factory

    from aleatoria.daemon.service import make_service

    from ..support.servers import make_config

    taken = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    try:
        busy = taken.getHost().port
        service = make_service(make_config(port=f"tcp:{busy}:interface=127.0.0.1"), reactor)
        with pytest.raises(SystemExit) as stop:
            service.startService()
        assert str(stop.value).startswith(f"aleatoria: cannot listen on tcp:{busy}")
        assert "Address already in use" in str(stop.value)
    finally:
        await taken.stopListening()


@pytest_twisted.ensureDeferred
async def test_reader_that_stops_reading_holds_nobody_up(server):
    """
    A member that stops reading does not delay the room: everybody else gets
    every message.
    """
    stalled, bob, carol = await server.connect_many("stalled", "bob", "carol", room="busy")
    await stalled.expect("user_joined")
    await stalled.expect("user_joined")
    await bob.expect("user_joined")
    stalled._protocol.transport.pauseProducing()
    body = "x" * 1000
    for n in range(300):
        bob.send({"type": "chat_message", "room": "busy", "payload": {"content": f"{n}{body}"}})
    for n in range(300):
        assert (await carol.expect("chat_message"))["payload"]["content"] == f"{n}{body}"
        assert (await bob.expect("chat_message"))["incoming"] is False
    stalled._protocol.transport.resumeProducing()


@pytest.mark.parametrize("limits", [
    pytest.param({"outbound-messages": "16"}, id="past-the-cap"),
    pytest.param({"outbound-stall": "0.5"}, id="stalled"),
])
@pytest_twisted.ensureDeferred
async def test_reader_that_never_reads_is_dropped(limits):
    """
    A member that stops reading while its room is flooded is dropped once
    its queue is over the cap, or has not shrunk for --outbound-stall
    seconds; the sender and the other members never wait.
    """
    server = await start_server(**limits)
    try:
        stalled, sender, other = await server.connect_many("stalled", "sender", "other",
                                                           room="flood")
        for _ in range(2):
            await stalled.expect("user_joined")
        await sender.expect("user_joined")
        stalled._protocol.transport.pauseProducing()
        body = "y" * 4000
        for sent in range(20000):  # noqa: B007 (read after the loop)
            sender.send({"type": "chat_message", "room": "flood", "payload": {"content": body}})
            await sender.expect("chat_message", skip={"user_left"})
            message = await other.next()
            if message["type"] == "user_left":
                break
            assert message["type"] == "chat_message"
        else:
            raise AssertionError("the stalled reader was never dropped")
        assert message["payload"]["userId"] == "stalled"
        assert "stalled" not in server.hub.connections
        assert sent > 16, sent
        stalled._protocol.transport.resumeProducing()
        await stalled.closed()
    finally:
        await stop_server(server)


class _Child:
    """A service whose stop takes as long as the test says (or forever)."""

    def __init__(self, name, stopped, log):
        from twisted.application.service import Service

        self.service = Service()
        self.service.setName(name)
        self.service.stopService = self.stop
        self._stopped = stopped
        self._log = log

    def stop(self):
        self._log.append(self.service.name)
        return self._stopped


def test_children_stop_one_after_another_within_the_deadline():
    """
    InOrder stops its children in reverse order, each once the one before
    has finished; a child that has not finished by the deadline is left
    behind and the rest are stopped anyway -- except the untimed ones,
    which are always waited for.
    """
    from twisted.internet.defer import Deferred, succeed
    from twisted.internet.task import Clock

    from aleatoria.daemon.lifecycle import InOrder

    clock, log = Clock(), []
    hung, flushing = Deferred(), Deferred()
    top = InOrder(clock, deadline=5, untimed=("reporter",))
    for name, stopped in [("reporter", flushing), ("store", succeed(None)),
                          ("hub", hung), ("listener", succeed(None))]:
        _Child(name, stopped, log).service.setServiceParent(top)
    top.startService()
    done = top.stopService()
    assert log == ["listener", "hub"]
    clock.advance(4.9)
    assert log == ["listener", "hub"]
    clock.advance(0.1)
    assert log == ["listener", "hub", "store", "reporter"]
    assert not done.called
    flushing.callback(None)
    assert done.called


@pytest_twisted.ensureDeferred
async def test_attacker_strings_are_cut_in_log_lines(server):
    """
    A 50 KB room name in a refused post and a 16 KB userId in a refused
    handshake appear in the log cut to 64 characters and escaped: the log
    cannot be flooded through them.
    """
    from .test_handshake import handshake

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        alice = await server.connect("alice")
        room = "r" * 50000
        await alice.request({"type": "chat_message", "room": room,
                             "payload": {"content": "x"}}, "error")
        assert await handshake(server, "userId=" + "u" * 16000) == 400
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [formatEvent(e) for e in events]
    assert any("refused (unauthorized_room_send, room 'rrrr" in line for line in lines)
    assert any("Refused handshake" in line for line in lines)
    assert max(len(line) for line in lines) < 400, max(lines, key=len)[:200]


@pytest_twisted.ensureDeferred
async def test_start_up_warns_when_only_loopback_pages_may_connect():
    """
    With neither --allowed-origin nor --public-host, start-up says once that
    only loopback pages may connect; with --public-host it does not.
    """
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        server = await start_server(**{"allowed-origin": None})
        await stop_server(server)
        quiet = await start_server(**{"allowed-origin": None, "public-host": "chat.example"})
        await stop_server(quiet)
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if "public-host" in formatEvent(e)]
    assert len(warnings) == 1 and "loopback" in warnings[0]


@pytest_twisted.ensureDeferred
async def test_the_listen_backlog_takes_a_reconnect_storm():
    """
    The kernel queues 1024 connection attempts for the daemon, not
    Twisted's 50: a few hundred clients reconnecting at once after a
    restart are not dropped, each to retry a second later.
    """
    server = await start_server()
    try:
        listing = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"],
                                 capture_output=True, text=True, check=True).stdout
        (line,) = listing.splitlines()
        assert line.split()[2] == "1024", line
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_refusals_from_one_address_are_summed_up(server):
    """
    Thirty refused handshakes from one address in a moment make one log
    line, not thirty (issue: security, item 8); the rest are counted.
    """
    from .test_handshake import handshake

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        for n in range(30):
            assert await handshake(server, f"userId=u{n}", origin="http://evil.example") == 403
    finally:
        globalLogPublisher.removeObserver(events.append)
    refused = [formatEvent(e) for e in events if "Refused handshake" in formatEvent(e)]
    assert len(refused) == 1, refused


def test_a_summary_counts_what_it_did_not_tell():
    """The first event of a window is told; the rest come as one count when it closes."""
    from twisted.internet.task import Clock

    from aleatoria.ops.budgets import Summary

    clock, told = Clock(), []
    summary = Summary(clock, 10, lambda key, count: told.append((key, count)))
    assert summary.first("1.2.3.4")
    assert [summary.first("1.2.3.4") for _ in range(5)] == [False] * 5
    assert summary.first("5.6.7.8")
    clock.advance(10)
    assert told == [("1.2.3.4", 5)]
    assert summary.first("1.2.3.4")
