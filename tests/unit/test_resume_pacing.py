"""
A replay paced by the client's reading, in memory with a fake clock: the
connection takes one message at a time, when the test lets it, while live
messages of the resumed stream keep coming. Whatever the interleaving,
the client gets each message once, in the order of its offset.
"""

import random

import pytest
from twisted.internet.task import Clock

from aleatoria.edge.wire import ChatPayload, Envelope, Position, ResumeRequest

from ..support.hub import Recorder, SlowReader, make_hub, received


def say(hub, conn, text):
    received(hub, conn, Envelope(type="chat_message", room="r",
                                 payload=ChatPayload(text)))


@pytest.mark.parametrize("seed", range(20))
def test_live_messages_follow_a_paced_replay_once_and_in_order(seed):
    """
    Twenty interleavings of reading and talking: the replay, then what was
    said meanwhile, every offset once, in order; then resumed, recovered.
    """
    rng = random.Random(seed)
    hub = make_hub(Clock())
    alice = Recorder("alice")
    hub.connected(alice, "r")
    for n in range(5):
        say(hub, alice, f"before {n}")
    bob = SlowReader("bob")
    hub.connected(bob, "home-bob")
    received(hub, bob, Envelope(type="resume", messageId="again", payload=ResumeRequest(
        rooms={"r": Position(0, "")})))
    said = 0
    while bob.waiting is not None:
        if said < 10 and rng.random() < 0.5:
            say(hub, alice, f"live {said}")
            said += 1
        else:
            bob.read()
    while said < 10:
        say(hub, alice, f"live {said}")
        said += 1
    chats = [m for m in bob.sent if m.type == "chat_message"]
    assert [m.offset for m in chats] == list(range(1, 16))
    assert [m.payload.content for m in chats] == (
        [f"before {n}" for n in range(5)] + [f"live {n}" for n in range(10)])
    (resumed,) = [m for m in bob.sent if m.type == "resumed"]
    assert resumed.payload["rooms"]["r"]["recovered"] is True
    assert not hub.delivery.resuming("bob")
