"""
The streams seam (L{aleatoria.domain.ports.IStreams}), held to one
contract on every backend: a new backend passes this file (and its
siblings for sessions and matchmaking) before the daemon may use it.
"""

import pytest_twisted
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from aleatoria.domain.events import DirectMessage, RoomMessage
from aleatoria.domain.ports import IBus, IStreams
from aleatoria.domain.values import Since
from aleatoria.memory.backend import MemoryBackend

from ..support.servers import CONTRACT_HISTORY as HISTORY_SIZE
from ..support.servers import started


def said(n, room="r", sender="alice", message_id=""):
    return RoomMessage(room, sender, str(n), message_id or f"m{n}", f"t{n}")


def wrote(n, sender="alice", recipient="bob"):
    return DirectMessage(sender, recipient, str(n), f"d{n}", f"t{n}")


def contents(messages):
    return [m.content for m in messages]


def test_provides_the_interface(backend):
    """Every backend's streams and bus fully provide their seams."""
    assert verifyObject(IStreams, backend.streams)
    assert verifyObject(IBus, backend.bus)


@pytest_twisted.ensureDeferred
async def test_a_post_is_handed_to_this_daemon_numbered(backend):
    """What a room keeps reaches this daemon's receiver, numbered, in offset order."""
    for n in range(3):
        posted = await backend.streams.post_room(said(n), at_ns=n + 1)
        assert not posted.missed
    from ..support.lifecycle_helpers import until

    await until(lambda: len(backend.receiver.handed) == 3)
    handed = [entry[1] for entry in backend.receiver.handed]
    assert [(m.offset, m.content) for m in handed] == [(1, "0"), (2, "1"), (3, "2")]
    assert len({m.epoch for m in handed}) == 1


@pytest_twisted.ensureDeferred
async def test_room_history_newest_first_strictly_before(backend):
    """Pages are newest first, at most limit, and before is exclusive."""
    streams = backend.streams
    for n in range(4):
        await streams.post_room(said(n), at_ns=1000 + n)
    assert contents(await streams.room_history("r", 10)) == ["3", "2", "1", "0"]
    assert contents(await streams.room_history("r", 2)) == ["3", "2"]
    assert contents(await streams.room_history("r", 10, before_ns=1002)) == ["1", "0"]
    assert contents(await streams.room_history("r", 1, before_ns=1002)) == ["1"]
    assert await streams.room_history("r", 10, before_ns=1000) == []
    assert await streams.room_history("other", 10) == []


@pytest_twisted.ensureDeferred
async def test_room_history_orders_by_time_not_arrival(backend):
    """A message kept late with an earlier time takes its place in time."""
    await backend.streams.post_room(said(2), at_ns=2000)
    await backend.streams.post_room(said(1), at_ns=1000)
    assert contents(await backend.streams.room_history("r", 10)) == ["2", "1"]


@pytest_twisted.ensureDeferred
async def test_room_history_is_capped(backend):
    """Only the newest history_size messages of a room are kept."""
    for n in range(HISTORY_SIZE + 3):
        await backend.streams.post_room(said(n), at_ns=n + 1)
    kept = contents(await backend.streams.room_history("r", 100))
    assert kept == [str(n) for n in reversed(range(3, HISTORY_SIZE + 3))]


@pytest_twisted.ensureDeferred
async def test_room_history_keeps_messages_intact(backend):
    """What is read back equals what was kept, field for field, numbered."""
    kept = said(1, message_id="m1")
    await backend.streams.post_room(kept, at_ns=5)
    (back,) = await backend.streams.room_history("r", 1)
    assert back.offset == 1 and back.epoch
    assert (back.room, back.sender, back.content, back.message_id, back.create_time) == (
        kept.room, kept.sender, kept.content, kept.message_id, kept.create_time)


@pytest_twisted.ensureDeferred
async def test_a_room_stream_is_numbered_and_read_after_an_offset(backend):
    """
    A room's messages are numbered 1, 2, 3... in one epoch; what follows an
    offset reads back in order, and says whether it is all there.
    """
    streams = backend.streams
    for n in range(HISTORY_SIZE + 2):
        await streams.post_room(said(n), at_ns=n + 1)
    (newest,) = await streams.room_history("r", 1)
    epoch, last = newest.epoch, HISTORY_SIZE + 2
    assert newest.offset == last
    since = await streams.room_since("r", HISTORY_SIZE - 1, epoch)
    assert (since.epoch, since.last, since.complete) == (epoch, last, True)
    assert [m.offset for m in since.messages] == [HISTORY_SIZE, HISTORY_SIZE + 1, last]
    assert contents(since.messages) == [str(HISTORY_SIZE - 1), str(HISTORY_SIZE),
                                        str(HISTORY_SIZE + 1)]
    whole = await streams.room_since("r", 2, epoch)
    assert whole.complete and [m.offset for m in whole.messages] == list(range(3, last + 1))
    assert (await streams.room_since("r", last, epoch)).messages == []
    assert await streams.room_since("nothing-said", 0, "") == Since("", 0, [], True)


@pytest_twisted.ensureDeferred
async def test_a_stream_reads_no_messages_it_could_not_replay_whole(backend):
    """
    Nothing is read when the client could not have all it missed: another
    epoch, an offset past the last, a gap beyond what is kept -- only where
    the stream stands. Offset 0 asks for all of any epoch.
    """
    streams = backend.streams
    for n in range(HISTORY_SIZE + 2):
        await streams.post_room(said(n), at_ns=n + 1)
        await streams.post_direct(wrote(n, "bob", "alice"))
    last = HISTORY_SIZE + 2
    room_epoch = (await streams.room_since("r", last, "")).epoch
    inbox_epoch = (await streams.inbox_since("alice", last, "")).epoch
    for read, epoch in ((lambda *a: streams.room_since("r", *a), room_epoch),
                        (lambda *a: streams.inbox_since("alice", *a), inbox_epoch)):
        for offset, claimed in ((last - 1, "another"), (1, epoch), (1, "another"),
                                (last, "another")):
            assert await read(offset, claimed) == Since(epoch, last, [], False)
        assert await read(last, epoch) == Since(epoch, last, [], True)
        assert (await read(last + 5, epoch)).messages == []
        assert [m.offset for m in (await read(0, "another")).messages] == []
        assert [m.offset for m in (await read(2, epoch)).messages] == list(range(3, last + 1))
        assert (await read(last - 1, "")).messages == []
    await streams.post_direct(wrote(0, "a:b", "bob"))
    assert contents((await streams.inbox_since("a:b", 0, "")).messages) == ["0"]


@pytest_twisted.ensureDeferred
async def test_each_party_numbers_a_direct_message_in_its_inbox(backend):
    """
    A direct message goes into both parties' inboxes, each numbering it its
    own way; the pair's history reads back numbered as the reader's inbox
    numbers it; system, who writes through the server API, has no inbox.
    """
    streams = backend.streams
    await streams.post_direct(wrote(0, "alice", "bob"))
    await streams.post_direct(wrote(1, "carol", "alice"))
    await streams.post_direct(wrote(2, "bob", "alice"))
    await streams.post_direct(wrote(3, "system", "bob"))

    mine = await streams.direct_history("alice", "bob", 10)
    epoch = mine[0].epoch
    assert [(m.offset, m.epoch) for m in mine] == [(1, epoch), (3, epoch)]
    theirs = await streams.direct_history("bob", "alice", 10)
    assert [m.offset for m in theirs] == [1, 2]
    assert [m.offset for m in await streams.direct_history("bob", "system", 10)] == [3]
    since = await streams.inbox_since("alice", 1, epoch)
    assert (since.last, since.complete, contents(since.messages)) == (3, True, ["1", "2"])
    assert [m.offset for m in since.messages] == [2, 3]
    assert await streams.inbox_since("nobody", 0, "") == Since("", 0, [], True)
    assert await streams.inbox_since("system", 0, "") == Since("", 0, [], True)


@pytest_twisted.ensureDeferred
async def test_each_party_is_handed_its_own_copy(backend):
    """A post of a direct message hands each party its copy, numbered in its inbox."""
    from ..support.lifecycle_helpers import until

    for user in ("alice", "bob", "carol"):
        await backend.sessions.claim(user)
    await backend.streams.post_direct(wrote(0, "carol", "bob"))
    await backend.streams.post_direct(wrote(1, "alice", "bob"))

    await until(lambda: len(backend.receiver.handed) == 4)
    copies = sorted((user, m.offset, m.content) for _, user, m in backend.receiver.handed)
    assert copies == [("alice", 1, "1"), ("bob", 1, "0"), ("bob", 2, "1"), ("carol", 1, "0")]


@pytest_twisted.ensureDeferred
async def test_conversations_most_recent_first_with_unread_counts(backend):
    streams = backend.streams
    await streams.post_direct(wrote(0, "alice", "bob"))
    await streams.post_direct(wrote(1, "carol", "alice"))
    await streams.post_direct(wrote(2, "carol", "alice"))
    await streams.post_direct(wrote(3, "alice", "dave"))
    found = await streams.conversations("alice", 10)
    assert [(c.with_user, c.unread, c.last.offset, c.last.content) for c in found] == [
        ("dave", 0, 4, "3"), ("carol", 2, 3, "2"), ("bob", 0, 1, "0")]
    page = await streams.conversations("alice", 2)
    assert [c.with_user for c in page] == ["dave", "carol"]
    rest = await streams.conversations("alice", 2, before=page[-1].last.offset)
    assert [c.with_user for c in rest] == ["bob"]
    assert [(c.with_user, c.unread) for c in await streams.conversations("bob", 10)] == [
        ("alice", 1)]

    assert await streams.mark_read("alice", "carol", 2) == 1
    assert await streams.mark_read("alice", "carol", 1) == 1
    assert await streams.mark_read("alice", "carol", 3) == 0
    assert [c.unread for c in await streams.conversations("alice", 10)] == [0, 0, 0]
    assert await streams.mark_read("alice", "nobody", 9) == 0


@pytest_twisted.ensureDeferred
async def test_conversations_are_capped(backend):
    """A user keeps its history_size most recent conversations, no more."""
    for n in range(HISTORY_SIZE + 2):
        await backend.streams.post_direct(wrote(n, f"u{n}", "alice"))
    found = await backend.streams.conversations("alice", 100)
    assert [c.with_user for c in found] == [f"u{n}" for n in reversed(range(2, HISTORY_SIZE + 2))]


@pytest_twisted.ensureDeferred
async def test_direct_history_is_shared_by_both_parties(backend):
    """A conversation is one history, whichever party names it first."""
    streams = backend.streams
    await streams.post_direct(wrote(0, "alice", "bob"))
    await streams.post_direct(wrote(1, "bob", "alice"))
    await streams.post_direct(wrote(2, "alice", "bob"))
    assert contents(await streams.direct_history("bob", "alice", 10)) == ["0", "1", "2"]
    assert contents(await streams.direct_history("alice", "bob", 2)) == ["1", "2"]
    assert await streams.direct_history("alice", "carol", 10) == []


@pytest_twisted.ensureDeferred
async def test_direct_history_is_capped(backend):
    """Only the last history_size messages of a pair are kept."""
    for n in range(HISTORY_SIZE + 2):
        await backend.streams.post_direct(wrote(n))
    assert contents(await backend.streams.direct_history("alice", "bob", 100)) == [
        str(n) for n in range(2, HISTORY_SIZE + 2)]


@pytest_twisted.ensureDeferred
async def test_nothing_is_full_while_there_is_no_budget(backend):
    assert backend.streams.full() is False


@pytest_twisted.ensureDeferred
async def test_memory_history_expires_after_ttl():
    """
    A history lives ttl seconds after its last write, like a Redis key's TTL;
    the sweep frees what has lapsed.
    """
    clock = Clock()
    backend = await started(MemoryBackend(clock, ttl=100, history_size=10))
    streams = backend.streams
    streams.post_room(said(0), at_ns=1)
    streams.post_direct(wrote(0))
    clock.advance(60)
    streams.post_room(said(1), at_ns=2)
    clock.advance(60)
    assert len(streams.room_history("r", 10).result) == 2
    assert streams.direct_history("alice", "bob", 10).result == []
    clock.advance(100)
    streams.expire()
    assert streams.room_history("r", 10).result == []
    assert streams.bytes == 0
