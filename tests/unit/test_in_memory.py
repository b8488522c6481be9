"""
The daemon's ports in memory, on a fake clock (L{tests.support.memory}):
the client protocol, the gate, /ready and the server API, with the
timeouts that a real socket could only test by waiting.
"""

import json

import pytest
from zope.interface.verify import verifyObject

from aleatoria.domain.ports import IConnection, IReceiver
from aleatoria.edge import frames

from ..support.hub import Recorder, SlowReader
from ..support.memory import Daemon
from ..support.servers import Receiver, make_config

TOKEN = "t" * 32


@pytest.fixture
def daemon():
    running = Daemon(make_config(**{"handshake-timeout": "5", "ping-interval": "10",
                                    "idle-timeout": "15", "connect-burst": "3",
                                    "connect-rate": "0.5"}))
    yield running
    running.stop()


def test_two_users_talk_in_a_room(daemon):
    ann, ann_pump = daemon.websocket("ann", room="r")
    bea, bea_pump = daemon.websocket("bea", room="r", address="10.0.0.2")
    ann.send({"type": "chat_message", "room": "r", "payload": {"content": "hi"},
              "messageId": "m1"})
    ann_pump.flush()
    bea_pump.flush()
    said = [m for m in bea.received if m["type"] == "chat_message"]
    assert [(m["fromUser"], m["payload"]["content"]) for m in said] == [("ann", "hi")]
    assert [m["messageId"] for m in ann.received if m["type"] == "chat_message"] == ["m1"]


def test_a_handshake_never_finished_is_cut_at_the_deadline(daemon):
    """Slowloris: half a request line, then nothing. Cut at 5 s of fake time, not before."""
    client, pump = daemon.http(b"GET /ws?userId=slow HTTP/1.1\r\nHost: x\r\n")
    daemon.clock.advance(4.9)
    pump.flush()
    assert not client.lost
    daemon.clock.advance(0.2)
    pump.flush()
    assert client.lost


def test_a_client_that_never_answers_pings_is_dropped_at_the_idle_timeout(daemon):
    deaf, pump = daemon.websocket("deaf", answer_pings=False)
    alive, alive_pump = daemon.websocket("alive", address="10.0.0.2")
    for _ in range(14):
        daemon.clock.advance(1)
        pump.flush()
        alive_pump.flush()
    assert deaf.closed is None
    for _ in range(20):
        daemon.clock.advance(1)
        pump.flush()
        alive_pump.flush()
    assert deaf.closed is not None
    assert alive.closed is None


def test_the_gate_refuses_a_burst_of_connections_from_one_address(daemon):
    answers = [daemon.http(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", address="10.9.9.9")[0]
               for _ in range(4)]
    assert [a.status() for a in answers] == [200, 200, 200, 429]
    assert daemon.http(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                       address="10.9.9.10")[0].status() == 200
    daemon.clock.advance(2)
    assert daemon.http(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                       address="10.9.9.9")[0].status() == 200


def test_ready_counts_the_connections_in_memory(daemon):
    daemon.websocket("ann")
    answer, _ = daemon.http(b"GET /ready HTTP/1.0\r\nHost: x\r\n\r\n")
    assert answer.status() == 200
    assert json.loads(answer.body()) == {"status": "ok", "store": "memory",
                                         "storeReachable": True, "connections": 1}


def test_a_body_on_the_clients_port_is_refused_before_it_is_read(daemon):
    answer, pump = daemon.http(b"POST /ready HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 1000000000\r\n\r\n")
    assert answer.status() == 413


@pytest.fixture
def api_daemon():
    running = Daemon(make_config({"ALEATORIA_API_TOKEN": TOKEN},
                                 **{"api-port": "tcp:0:interface=127.0.0.1"}))
    yield running
    running.stop()


def test_the_api_asks_for_its_token(api_daemon):
    asked = b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n%s\r\n"
    without, _ = api_daemon.http(asked % b"", listener="api-listener")
    wrong, _ = api_daemon.http(asked % b"Authorization: Bearer nope\r\n",
                               listener="api-listener")
    right, _ = api_daemon.http(asked % (b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"),
                               listener="api-listener")
    assert (without.status(), wrong.status(), right.status()) == (401, 401, 200)


def test_the_api_refuses_a_large_body_at_header_time(api_daemon):
    answer, _ = api_daemon.http(
        b"POST /api/v1/users/u/disconnect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode() + b"\r\nContent-Length: 10000000\r\n\r\n", listener="api-listener")
    assert answer.status() == 413


def test_the_fakes_provide_their_interfaces():
    """A fake that drifted from its interface would test a daemon that does not exist."""
    assert verifyObject(IConnection, Recorder("ann"))
    assert verifyObject(IConnection, SlowReader("ann"))
    assert verifyObject(IReceiver, Receiver())


UPGRADE = (b"GET /ws?userId=%s HTTP/1.1\r\nHost: 127.0.0.1:8085\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nOrigin: http://test.example\r\n%s\r\n")


def test_an_upgrade_opens_the_same_websocket_in_one_piece_or_in_two(daemon, monkeypatch):
    """
    A whole upgrade alone goes straight to Autobahn (twisted.web makes no
    request of it); one that arrives in pieces is read by twisted.web
    first. Both open a WebSocket.
    """
    site = daemon.site()
    requests = []
    made = site.requestFactory

    def counted(*args, **kwargs):
        requests.append(made(*args, **kwargs))
        return requests[-1]

    monkeypatch.setattr(site, "requestFactory", counted)
    whole, _ = daemon.http(UPGRADE % (b"ann", b""))
    assert requests == []
    request = UPGRADE % (b"bea", b"")
    split, pump = daemon.http(request[:40], address="10.0.0.2")
    split.transport.write(request[40:])
    pump.flush()
    assert len(requests) == 1
    for answer in (whole, split):
        assert answer.data.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer.data
    assert set(daemon.hub.connections.users()) == {"ann", "bea"}


def test_an_offer_of_compression_is_declined_and_the_websocket_opens(daemon):
    """Browsers offer permessage-deflate; the daemon sends no compressed frames, and says so."""
    answer, _ = daemon.http(UPGRADE % (
        b"ann", b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
    assert answer.data.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-extensions" not in answer.data.lower()
    assert "ann" in daemon.hub.connections


def test_an_upgrade_that_says_it_has_a_body_is_screened_as_any_request(daemon):
    answer, _ = daemon.http(UPGRADE % (b"ann", b"Content-Length: 5\r\n"))
    assert answer.status() == 413
    assert "ann" not in daemon.hub.connections


def test_an_open_connection_keeps_nothing_of_its_handshake(daemon):
    """Autobahn's copies of the request and response go at open; the connection works on."""
    ann, ann_pump = daemon.websocket("ann", room="r")
    bea, bea_pump = daemon.websocket("bea", room="r", address="10.0.0.2")
    server = daemon.hub.connections.get("ann")
    assert [getattr(server, name) for name in frames.HANDSHAKE_ATTRIBUTES] == [None] * len(
        frames.HANDSHAKE_ATTRIBUTES)
    assert "send_queue" not in vars(server)  # Autobahn's, for sends the daemon never makes
    ann.send({"type": "chat_message", "room": "r", "payload": {"content": "hi"}})
    ann_pump.flush()
    bea_pump.flush()
    assert [m["payload"]["content"] for m in bea.received if m["type"] == "chat_message"] == ["hi"]
    ann.sendClose(1000)
    ann_pump.flush()
    assert ann.closed[0] == 1000 and "ann" not in daemon.hub.connections


def test_each_daemon_keeps_its_own_protocol_options_once_not_in_each_connection():
    """
    Autobahn would copy its options into every connection; they live on a
    class of the daemon's own, so two daemons in one process keep theirs.
    """
    small = Daemon(make_config(**{"max-message-size": "2048"}))
    large = Daemon(make_config(**{"max-message-size": "65536"}))
    try:
        small.websocket("ann")
        large.websocket("bea")
        ann, bea = small.hub.connections.get("ann"), large.hub.connections.get("bea")
        assert (ann.maxMessagePayloadSize, bea.maxMessagePayloadSize) == (2048, 65536)
        assert [name for name in type(ann).CONFIG_ATTRS if name in vars(ann)] == []
    finally:
        small.stop()
        large.stop()


def test_a_synchronous_send_gets_its_queue_when_it_needs_one(daemon):
    """Autobahn's chopped and synchronous sends still work, in order, with a queue made for them."""
    ann, pump = daemon.websocket("ann")
    server = daemon.hub.connections.get("ann")
    server.sendMessage(b'{"type": "one"}', sync=True)
    server.sendMessage(b'{"type": "two"}')
    for _ in range(3):
        daemon.clock.advance(0.1)
        pump.flush()
    assert [m["type"] for m in ann.received][-2:] == ["one", "two"]
    assert not server.send_queue
