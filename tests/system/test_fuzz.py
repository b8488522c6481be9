"""
Fuzzing (issue: hardening, item 4): random frames over a real socket.
(Random bytes and JSON into the decoder: tests/unit/test_decoding_fuzz.py;
random interleavings of what users do, into the hub: test_hub_machine.py.)

ALEATORIA_FUZZ_EXAMPLES raises the number of examples (default 60) for a
longer run: ALEATORIA_FUZZ_EXAMPLES=2000 make test.
"""

import json
import random

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support.strategies import EXAMPLES, FIELDS, TYPES


@pytest_twisted.ensureDeferred
async def test_random_frames_over_a_real_socket(server):
    """
    Hundreds of random frames -- bytes, JSON of every shape, mangled
    envelopes -- from one client: it stays connected, the daemon serves on,
    and the only things another user receives are well-formed messages the
    sender was allowed to send them.
    """
    rng = random.Random(20261129)
    mallory, bob = await server.connect_many("mallory", "bob", room="r")
    await mallory.expect("user_joined")
    for _ in range(EXAMPLES * 5):
        choice = rng.random()
        if choice < 0.3:
            frame = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            if rng.random() < 0.5:
                mallory.send_binary(frame)
                continue
            frame = frame.decode("latin-1")
        elif choice < 0.7:
            frame = json.dumps(_random_json(rng))
        else:
            frame = json.dumps({"type": rng.choice(TYPES), "toUser": rng.choice(["bob", 5, None]),
                                "room": rng.choice(["r", "", "x" * 200, ["r"]]),
                                "payload": rng.choice([{}, [], "x", {"content": 7},
                                                       {"limit": -1}, None])})
        mallory.send(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)
    mallory.send({"type": "get_direct_messages", "payload": {"withUser": "sentinel"}})
    while True:
        reply = await mallory.next()
        if reply["type"] == "direct_messages" and reply["payload"]["withUser"] == "sentinel":
            break
        assert reply["type"] != "chat_message" or reply["fromUser"] == "mallory"
    assert "mallory" in server.hub.connections
    bob.send({"type": "get_direct_messages", "payload": {"withUser": "sentinel"}})
    received = []
    while not received or received[-1]["type"] != "direct_messages":
        received.append(await bob.next())
    for message in received[:-1]:
        assert message["type"] in ALLOWED_TO_REACH_BOB
        assert message["fromUser"] in ("mallory", "system")
        assert isinstance(message.get("payload", {}), dict)
        if message["type"] == "chat_message":
            assert isinstance(message["payload"]["content"], str)
    assert received[-1]["payload"]["withUser"] == "sentinel"


ALLOWED_TO_REACH_BOB = {"webrtc_offer", "webrtc_answer", "webrtc_candidate", "hangup",
                        "chat_message", "user_joined", "user_left", "assign_role"}


def _random_json(rng, depth=0):
    kinds = ["null", "bool", "int", "str", "list", "dict"] if depth < 3 else ["int", "str"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randrange(-10**20, 10**20)
    if kind == "str":
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(8)))
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = FIELDS + ["content", "limit", "withUser"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


_FRAMES = st.lists(st.tuples(
    st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11, 15]),  # continuation, data, reserved, control
    st.booleans(),  # fin
    st.binary(max_size=300),
    st.sampled_from([0, 0, 0, 4]),  # rsv bits: none, or the compression bit
), max_size=60)


@pytest.fixture(scope="module")
def frame_daemon(tmp_path_factory):
    """One daemon (its own process) for every example of the frame fuzzer."""
    from ..support.daemons import Spawned

    daemon = Spawned(None, tmp_path_factory.mktemp("frames"), "--allowed-origin",
                     "http://fuzz.example", "--connect-burst", "100000",
                     "--rate-limit", "20", "--rate-burst", "40")
    yield daemon
    daemon.kill()


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=_FRAMES, number=st.integers(0, 10**9))
def test_random_frame_sequences(frame_daemon, frames, number):
    """
    Random sequences of WebSocket frames -- fragments, control frames,
    reserved opcodes and bits, odd sizes -- never take the daemon down:
    each connection is served on or closed with a code of the protocol's
    (docs/protocol.rst, "Close codes"), and another client is answered
    after every sequence (issue: security, tests).
    """
    from ..support.rawws import answer, close_code, frame, opened, send_until_closed

    origin, port = "http://fuzz.example", frame_daemon.port
    raw = opened(port, f"fuzz{number}", origin)
    try:
        send_until_closed(raw, [frame(op, data[:125] if op >= 8 else data, fin or op >= 8, rsv)
                                for op, fin, data, rsv in frames])
        raw.sendall(frame(8, b"\x03\xe8"))  # our close, to end the exchange
        closed = close_code(raw)
    except OSError:
        closed = None
    finally:
        raw.close()
    assert closed is None or closed[0] in {1000, 1002, 1007, 1008, 1009}, closed
    probe = opened(port, f"probe{number}", origin)
    try:
        assert b"rooms_list" in answer(probe, b'{"type": "get_rooms"}')
    finally:
        probe.close()
