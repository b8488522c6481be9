"""
A sender hears its own stream in order of offset: its echo waits for the
outcome of its message (L{aleatoria.domain.delivery.Delivery.settled}),
and what comes after it in the stream -- another member's next message --
waits behind it, not past it (seen on Redis across two daemons: an echo
came after a message numbered later).
"""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from aleatoria.domain.ports import IStreams
from aleatoria.edge.wire import ChatPayload, Envelope
from aleatoria.memory.backend import MemoryBackend

from ..support.hub import Recorder, make_hub, received


@implementer(IStreams)
class SlowOutcomes:
    """
    The embedded streams, but the store's answer to a post of C{sender}'s
    comes when the test says (C{answer}), its pushes going out at once --
    as on Redis, where the bus may bring them before the answer.
    """

    def __init__(self, streams, sender):
        self._streams = streams
        self._sender = sender
        self.answers = []

    def __getattr__(self, name):
        return getattr(self._streams, name)

    def post_room(self, message, at_ns):
        return self._later(message, self._streams.post_room(message, at_ns))

    def post_direct(self, message):
        return self._later(message, self._streams.post_direct(message))

    def _later(self, message, posted):
        if message.sender != self._sender:
            return posted
        later = Deferred()
        self.answers.append((posted.result, later))
        return later

    def answer(self):
        result, later = self.answers.pop(0)
        later.callback(result)


def hub_with(sender):
    clock = Clock()
    backend = MemoryBackend(clock, 3600, 200)
    backend.streams = store = SlowOutcomes(backend.streams, sender)
    return make_hub(clock, backend), store


def test_the_slow_streams_are_streams():
    """The stand-in is what the hub takes it for: the embedded streams, slowed down."""
    _, store = hub_with("pat")
    assert verifyObject(IStreams, store)


def say(hub, sender, content, to=None):
    payload = ChatPayload(content)
    received(hub, sender, Envelope(type="chat_message", toUser=to, payload=payload) if to
             else Envelope(type="chat_message", room="r", payload=payload))


def heard(conn, room=True):
    return [(m.payload.content, m.offset) for m in conn.sent
            if m.type == "chat_message" and bool(m.room) == room]


def test_what_follows_an_echo_in_a_room_waits_behind_it():
    """Pat's echo waits for its outcome; Ulla's later messages wait behind it for Pat only."""
    hub, store = hub_with("pat")
    pat, ulla = Recorder("pat"), Recorder("ulla")
    hub.connected(pat, "r")
    hub.connected(ulla, "r")
    say(hub, pat, "first")
    say(hub, ulla, "second")
    say(hub, pat, "third")
    say(hub, ulla, "fourth")
    say(hub, ulla, "a dm", to="pat")  # another stream: not held up
    assert heard(ulla) == [("first", 1), ("second", 2), ("third", 3), ("fourth", 4)]
    assert heard(pat) == []
    assert heard(pat, room=False) == [("a dm", 1)]
    store.answer()
    assert heard(pat) == [("first", 1), ("second", 2)]
    store.answer()
    assert heard(pat) == [("first", 1), ("second", 2), ("third", 3), ("fourth", 4)]
    say(hub, ulla, "fifth")
    assert heard(pat)[-1] == ("fifth", 5)


def test_what_follows_an_echo_in_the_inbox_waits_behind_it():
    """The same in the sender's inbox: a reply numbered after its message comes after its echo."""
    hub, store = hub_with("pat")
    pat, ulla = Recorder("pat"), Recorder("ulla")
    hub.connected(pat, "home-pat")
    hub.connected(ulla, "home-ulla")
    say(hub, pat, "hello", to="ulla")
    say(hub, ulla, "hi back", to="pat")
    assert heard(pat, room=False) == []
    store.answer()
    assert heard(pat, room=False) == [("hello", 1), ("hi back", 2)]


def test_a_line_goes_out_whole_after_the_room_is_left():
    """
    Leaving the room before the outcome: the echo still comes (the sender's
    request is answered), and what was said while it was in, after it.
    """
    hub, store = hub_with("pat")
    pat, ulla = Recorder("pat"), Recorder("ulla")
    hub.connected(pat, "r")
    hub.connected(ulla, "r")
    say(hub, pat, "first")
    say(hub, ulla, "second")
    received(hub, pat, Envelope(type="leave_room", room="r"))
    say(hub, ulla, "third")
    store.answer()
    assert heard(pat) == [("first", 1), ("second", 2)]
    assert hub.delivery._lines == {}
