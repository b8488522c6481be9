"""
Limits held without a network: idle budgets forgotten, slow readers'
backlogs, and the memory store's history budget and eviction.
"""




class _Queue:
    """A transport's queue, as the test makes it grow and drain."""

    def __init__(self):
        self.size = 0


def _backlog(queue, clock, stall=10, messages=1000, size=10**9):
    from aleatoria.edge.limits import Backlog

    backlog = Backlog(messages, size, stall, lambda: queue.size, clock.seconds)
    backlog.pauseProducing()
    return backlog


def _said(room, body, sender="alice", n=0):
    from aleatoria.domain.events import RoomMessage

    return RoomMessage(room, sender, body, f"m{n}", f"2026-12-01T00:00:00.{n:09d}Z")


def _wrote(sender, recipient, body, n=0):
    from aleatoria.domain.events import DirectMessage

    return DirectMessage(sender, recipient, body, f"d{n}", f"2026-12-01T00:00:00.{n:09d}Z")


def _memory(clock, ttl, size, max_bytes=None):
    """An embedded backend, started, with nobody connected."""
    from aleatoria.memory.backend import MemoryBackend

    from ..support.servers import Receiver

    backend = MemoryBackend(clock, ttl, size, max_bytes=max_bytes)
    backend.bus.listen(Receiver(keep=False))
    backend.sessions.listen(Receiver(keep=False))
    backend.startService()
    return backend


def _epoch(streams, room):
    (newest,) = streams.room_history(room, 1).result
    return newest.offset, newest.epoch


def _weighed_from_scratch(streams):
    """
    What the embedded backend's kept messages weigh, counted afresh: each
    room message, and each direct message once, however many copies are kept.
    """
    import msgspec
    from msgspec.structs import replace

    encode = msgspec.json.encode
    rooms = sum(len(encode(m)) for history in streams._room_history.values()
                for _, m in history)
    copies = [kept.message for history in streams._direct_history.values() for kept in history]
    copies += [m for inbox in streams._inboxes.values() for m in inbox.messages]
    direct = {(m.sender, m.create_time): len(encode(replace(m, offset=0, epoch="")))
              for m in copies}
    return rooms + sum(direct.values())


def test_idle_budgets_are_forgotten_once_full_again():
    """A user's bucket is kept while it matters, and not a moment longer."""
    from twisted.internet.task import Clock

    from aleatoria.domain.limits import KeyedBuckets

    clock = Clock()
    buckets = KeyedBuckets(rate=2, burst=4, seconds=clock.seconds)
    for user in range(100):
        assert buckets.delay(user) == 0
    clock.advance(1)
    buckets.delay("late")
    assert len(buckets) == 101  # none forgotten yet: a sweep comes every burst / rate seconds
    clock.advance(2)
    buckets.delay("later")
    assert len(buckets) == 1


def test_a_reader_however_slow_is_kept():
    """
    A burst far beyond what the socket holds, to a client that drains its
    queue a little between sends, never drops it (issue: security, item 5).
    """
    from twisted.internet.task import Clock

    clock, queue = Clock(), _Queue()
    backlog = _backlog(queue, clock)
    for _ in range(500):
        assert backlog.admits(4000)
        queue.size += 4000 - 1000  # written, and a little read
        clock.advance(1)


def test_a_reader_that_stopped_is_dropped_after_the_stall():
    from twisted.internet.task import Clock

    clock, queue = Clock(), _Queue()
    backlog = _backlog(queue, clock, stall=10)
    for _ in range(11):  # 0 to 10 seconds without progress: still within the stall
        assert backlog.admits(100)
        queue.size += 100
        clock.advance(1)
    assert not backlog.admits(100)


def test_nobody_queues_past_the_caps():
    from twisted.internet.task import Clock

    clock, queue = Clock(), _Queue()
    backlog = _backlog(queue, clock, messages=3)
    assert all(backlog.admits(10) for _ in range(3)) and not backlog.admits(10)
    backlog = _backlog(_Queue(), clock, size=1000)
    assert backlog.admits(999) and not backlog.admits(1001)


def test_memory_returns_when_histories_expire():
    """
    A flood of join-post-leave rooms and direct messages to made-up users
    costs memory while their histories live, and gives it all back when
    they expire (issue: security, item 2): measured with tracemalloc.
    """
    import gc
    import tracemalloc

    from twisted.internet.task import Clock

    from aleatoria.memory.backend import SWEEP_SECONDS

    clock = Clock()
    backend = _memory(clock, 3600, 100)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for n in range(2000):
            room, user = f"room{n}", f"u{n}"
            backend.sessions.join_room(room, user)
            backend.streams.post_room(_said(room, "x" * 1000, user, n), n)
            backend.sessions.leave_room(room, user)
            backend.streams.post_direct(_wrote(user, f"ghost{n}", "y" * 1000, n))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        clock.advance(3600 + SWEEP_SECONDS)
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
        backend.stopService()
    assert grown > 2_000_000
    assert left < grown / 50, (grown, left)
    assert backend.streams.bytes == 0


def test_memory_evicts_the_streams_written_longest_ago():
    """
    On the memory store, a write past the budget evicts the streams last
    written longest ago (never the ones it writes) until back under it;
    the store is never full; an evicted stream written again begins a new
    epoch; one log line sums up the evictions (issue 22, item 4).
    """
    from twisted.internet.task import Clock
    from twisted.logger import capturedLogs

    from aleatoria.memory.backend import TELL_SECONDS

    clock = Clock()
    backend = _memory(clock, 3600, 100, max_bytes=5000)
    streams = backend.streams
    first = {}
    for n in range(4):
        clock.advance(1)
        streams.post_room(_said(f"room{n}", "x" * 1000, n=n), n)
        first[n] = _epoch(streams, f"room{n}")[1]
    streams.post_direct(_wrote("alice", "ghost", "y" * 1000, 10))
    streams.post_room(_said("room1", "z" * 1000, n=11), 9)
    streams.post_direct(_wrote("alice", "ghost2", "y" * 1000, 12))
    assert not streams.full()
    assert [n for n in range(4) if streams.room_history(f"room{n}", 10).result] == [1]
    assert len(streams.direct_history("alice", "ghost", 10).result) == 1
    assert streams.bytes == _weighed_from_scratch(streams) <= 5000
    assert backend.evictions.total == {"room": 3, "direct": 0, "inbox": 0}
    streams.post_room(_said("room0", "again", n=13), 10)
    offset, epoch = _epoch(streams, "room0")
    assert (offset, epoch != first[0]) == (1, True)
    with capturedLogs() as events:
        clock.advance(TELL_SECONDS)
        clock.advance(TELL_SECONDS)
    told = [e for e in events if e["log_format"].startswith("Evicted")]
    assert len(told) == 1 and (told[0]["streams"], told[0]["rooms"]) == (3, 3), told
    backend.stopService()


def test_a_direct_message_weighs_once_on_memory():
    """
    A direct message is kept in the pair's history and in each party's
    inbox, sharing its content: it weighs once (issue 22, item 4); as
    copies go, it weighs until the last has gone, and then nothing.
    """
    import msgspec
    from twisted.internet.task import Clock

    clock = Clock()
    streams = _memory(clock, 3600, 2).streams
    message = _wrote("alice", "bob", "y" * 1000)
    streams.post_direct(message)
    assert streams.bytes == len(msgspec.json.encode(message))
    others = [_wrote("alice", f"u{n}", str(n), n + 1) for n in range(2)]
    for other in others:  # alice's inbox drops it; bob's and the pair's keep it
        streams.post_direct(other)
    assert streams.bytes == _weighed_from_scratch(streams) == sum(
        len(msgspec.json.encode(m)) for m in [message, *others])


def test_memory_accounting_comes_back_to_nothing():
    """
    Whatever was kept, trimmed, evicted or read, once every stream has
    expired the memory store counts 0 bytes, and the count is right at
    every step between.
    """
    import random

    from twisted.internet.task import Clock

    from aleatoria.domain.rules import SYSTEM
    from aleatoria.memory.backend import SWEEP_SECONDS

    clock = Clock()
    backend = _memory(clock, 600, 3, max_bytes=20_000)
    streams = backend.streams
    rng = random.Random(7)
    users = ["alice", "bob", "carol", SYSTEM] + [f"ghost{n}" for n in range(30)]
    for n in range(600):
        clock.advance(rng.random())
        sender, recipient = rng.sample(users, 2)
        if rng.random() < 0.4:
            streams.post_room(_said(f"room{rng.randrange(20)}", "r" * rng.randrange(900),
                                    n=n), n)
        elif recipient != SYSTEM:
            streams.post_direct(_wrote(sender, recipient, "d" * rng.randrange(900), n))
        if n % 50 == 0:
            streams.room_history("room1", 10)
            streams.inbox_since("alice", 0, "")
            assert streams.bytes == _weighed_from_scratch(streams)
    assert backend.evictions.total["room"] and backend.evictions.total["inbox"]
    clock.advance(600 + SWEEP_SECONDS)
    assert streams.bytes == 0 and streams._copies == {}
    backend.stopService()
