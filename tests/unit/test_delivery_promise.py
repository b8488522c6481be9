"""
The promise of stream delivery (L{aleatoria.domain.delivery}), as a
property: whatever the interleaving of live messages, the store's read of
what a client missed (taken at one moment, answered at a later one) and the
client's reading, a resumed client gets every message of each stream it
resumed -- a room's, its inbox -- once, in the order of its offset, from
just past where it stood; and is told it recovered, standing at the last.
(What reached it live before it asked to resume came first, of course;
the replay stops short of it.)
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from aleatoria.domain.ports import IStreams
from aleatoria.domain.values import Place
from aleatoria.edge.wire import ChatPayload, Envelope
from aleatoria.memory.backend import MemoryBackend

from ..support.hub import Recorder, SlowReader, make_hub, received
from ..support.strategies import EXAMPLES


@implementer(IStreams)
class SlowReads:
    """
    The embedded streams, but a read of what was missed happens when the
    test says (C{take}: the store looks) and is answered later (C{answer}).
    """

    def __init__(self, streams):
        self._streams = streams
        self.asked, self.taken = [], []

    def __getattr__(self, name):
        return getattr(self._streams, name)

    def room_since(self, *args):
        return self._asked(self._streams.room_since, args)

    def inbox_since(self, *args):
        return self._asked(self._streams.inbox_since, args)

    def _asked(self, read, args):
        d = Deferred()
        self.asked.append((read, args, d))
        return d

    def take(self):
        read, args, d = self.asked.pop(0)
        self.taken.append((read(*args).result, d))

    def answer(self):
        found, d = self.taken.pop(0)
        d.callback(found)


def test_the_slow_reads_are_streams():
    """The stand-in is what the hub takes it for: the embedded streams, read slowly."""
    assert verifyObject(IStreams, SlowReads(MemoryBackend(Clock(), 3600, 100).streams))


def talk(hub, sender, to=None):
    envelope = (Envelope(type="chat_message", toUser=to, payload=ChatPayload("dm")) if to
                else Envelope(type="chat_message", room="r", payload=ChatPayload("hi")))
    received(hub, sender, envelope)


def numbered(conn, room):
    """The offsets of the chat messages C{conn} got, of the room or of its inbox."""
    return [m.offset for m in conn.sent
            if m.type == "chat_message" and (m.room == "r") == (room is not None)]


STEPS = st.lists(st.sampled_from(["room", "dm", "take", "answer", "read"]), max_size=40)


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(said=st.integers(0, 12), seen=st.data(), early=st.lists(st.sampled_from(["room", "dm"]),
                                                               max_size=4), steps=STEPS)
def test_a_resume_delivers_each_message_once_in_order(said, seen, early, steps):
    clock = Clock()
    backend = MemoryBackend(clock, 3600, 200)
    backend.streams = store = SlowReads(backend.streams)
    hub = make_hub(clock, backend)
    pat = Recorder("pat")
    hub.connected(pat, "r")
    for n in range(said):
        talk(hub, pat, to="ulla" if n % 3 == 0 else None)
    in_room = store.room_history("r", 1000).result
    dms = said // 3 + (said % 3 > 0)
    room_at = seen.draw(st.integers(0, len(in_room)))
    inbox_at = seen.draw(st.integers(0, dms))

    ulla = SlowReader("ulla")
    hub.connected(ulla, "home-ulla")
    epoch = in_room[0].epoch if in_room else ""
    inbox_epoch = hub.streams.inbox_since("ulla", 0, "")
    store.take()
    store.answer()
    inbox_epoch = inbox_epoch.result.epoch
    for step in early:
        talk(hub, pat, to="ulla" if step == "dm" else None)
    live = numbered(ulla, None)
    resumed = []

    def done(outcome):
        resumed.append((outcome, numbered(ulla, "r"), numbered(ulla, None)))

    resume = hub.resumer.resume(ulla, {"r": Place(room_at, epoch)}, Place(inbox_at, inbox_epoch))
    Deferred.fromCoroutine(resume).addBoth(done)

    for step in steps:
        if step == "room":
            talk(hub, pat)
        elif step == "dm":
            talk(hub, pat, to="ulla")
        elif step == "take" and store.asked:
            store.take()
        elif step == "answer" and store.taken:
            store.answer()
        elif step == "read" and ulla.waiting is not None:
            ulla.read()
    while not resumed:
        if store.asked:
            store.take()
        elif store.taken:
            store.answer()
        else:
            ulla.read()
    talk(hub, pat)
    talk(hub, pat, to="ulla")

    (rooms, inbox), room_got, inbox_got = resumed[0]
    room_last = store.room_history("r", 1).result[0].offset
    inbox_last = hub.streams.inbox_since("ulla", 0, "")
    store.take()
    store.answer()
    inbox_last = inbox_last.result.last
    assert numbered(ulla, "r") == list(range(room_at + 1, room_last + 1))
    missed = [offset for offset in range(inbox_at + 1, inbox_last + 1) if offset not in live]
    assert numbered(ulla, None) == live + missed
    assert rooms["r"].recovered and inbox.recovered
    assert rooms["r"].offset == max(room_got or [room_at])
    assert inbox.offset == max(inbox_got or [inbox_at])
