"""
The L{IStore} contract, run against every backend. A new backend passes
this file before the daemon may use it.
"""

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from aleatoria.messages import Envelope
from aleatoria.store import IStore
from aleatoria.service import make_store
from aleatoria.store.memory import MemoryStore

from .conftest import connected, redis_config

HISTORY_SIZE = 5


@pytest_twisted.async_yield_fixture(params=["memory", "redis"])
async def store(request):
    """Each backend in turn, fresh for every test."""
    if request.param == "memory":
        yield MemoryStore(Clock(), ttl=3600, history_size=HISTORY_SIZE)
        return
    from twisted.internet import reactor

    server = request.getfixturevalue("redis_server")
    config = redis_config(server.port, **{
        "redis-prefix": request.getfixturevalue("redis_prefix"),
        "history-size": str(HISTORY_SIZE),
    })
    store = await connected(make_store(config, reactor))
    yield store
    await store.stopService()


def message(n, sender="alice", **fields):
    return Envelope(type="chat_message", fromUser=sender, payload={"content": str(n)},
                    createTime=f"t{n}", **fields)


def contents(envelopes):
    return [e.payload["content"] for e in envelopes]


def test_provides_the_interface(store):
    """Every backend fully provides IStore."""
    assert verifyObject(IStore, store)


@pytest_twisted.ensureDeferred
async def test_membership_both_ways(store):
    """Joining is visible from the room and from the user; leaving undoes it."""
    await store.join_room("r", "bob")
    await store.join_room("r", "alice")
    await store.join_room("s", "alice")
    assert await store.room_members("r") == ["alice", "bob"]
    assert await store.user_rooms("alice") == ["r", "s"]
    await store.leave_room("r", "alice")
    assert await store.room_members("r") == ["bob"]
    assert await store.user_rooms("alice") == ["s"]
    await store.leave_room("r", "bob")
    assert await store.room_members("r") == []


@pytest_twisted.ensureDeferred
async def test_room_history_newest_first_strictly_before(store):
    """Pages are newest first, at most limit, and before is exclusive."""
    for n in range(4):
        await store.save_room_message("r", message(n), at_ns=1000 + n)
    assert contents(await store.room_messages("r", 10)) == ["3", "2", "1", "0"]
    assert contents(await store.room_messages("r", 2)) == ["3", "2"]
    assert contents(await store.room_messages("r", 10, before_ns=1002)) == ["1", "0"]
    assert contents(await store.room_messages("r", 1, before_ns=1002)) == ["1"]
    assert await store.room_messages("r", 10, before_ns=1000) == []
    assert await store.room_messages("other", 10) == []


@pytest_twisted.ensureDeferred
async def test_room_history_orders_by_time_not_arrival(store):
    """A message saved late with an earlier time takes its place in time."""
    await store.save_room_message("r", message(2), at_ns=2000)
    await store.save_room_message("r", message(1), at_ns=1000)
    assert contents(await store.room_messages("r", 10)) == ["2", "1"]


@pytest_twisted.ensureDeferred
async def test_room_history_is_capped(store):
    """Only the newest history_size messages of a room are kept."""
    for n in range(HISTORY_SIZE + 3):
        await store.save_room_message("r", message(n), at_ns=n + 1)
    kept = contents(await store.room_messages("r", 100))
    assert kept == [str(n) for n in reversed(range(3, HISTORY_SIZE + 3))]


@pytest_twisted.ensureDeferred
async def test_room_history_keeps_envelopes_intact(store):
    """What is read back equals what was saved, field for field."""
    saved = message(1, room="r", messageId="m1", toUser="")
    await store.save_room_message("r", saved, at_ns=5)
    assert await store.room_messages("r", 1) == [saved]


@pytest_twisted.ensureDeferred
async def test_direct_history_is_shared_by_both_parties(store):
    """A conversation is one history, whichever party names it first."""
    await store.save_direct_message("alice", "bob", message(0))
    await store.save_direct_message("bob", "alice", message(1, sender="bob"))
    await store.save_direct_message("alice", "bob", message(2))
    assert contents(await store.direct_messages("bob", "alice", 10)) == ["0", "1", "2"]
    assert contents(await store.direct_messages("alice", "bob", 2)) == ["1", "2"]
    assert await store.direct_messages("alice", "carol", 10) == []


@pytest_twisted.ensureDeferred
async def test_direct_history_is_capped(store):
    """Only the last history_size messages of a pair are kept."""
    for n in range(HISTORY_SIZE + 2):
        await store.save_direct_message("alice", "bob", message(n))
    assert contents(await store.direct_messages("alice", "bob", 100)) == [
        str(n) for n in range(2, HISTORY_SIZE + 2)
    ]


@pytest_twisted.ensureDeferred
async def test_pool_pick_takes_both_out(store):
    """A pick removes the requester and the picked user from the pool."""
    for user in ("alice", "bob"):
        await store.pool_add(user)
    assert await store.pool_pick("alice", set()) == "bob"
    assert await store.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_pool_pick_excludes(store):
    """Neither the requester nor an excluded user is ever picked."""
    for user in ("alice", "bob", "carol"):
        await store.pool_add(user)
    for _ in range(20):
        peer = await store.pool_pick("alice", {"bob"})
        assert peer == "carol"
        await store.pool_add("alice")
        await store.pool_add("carol")


@pytest_twisted.ensureDeferred
async def test_pool_pick_without_fit_changes_nothing(store):
    """When nobody fits, the answer is None and the pool is as it was."""
    await store.pool_add("alice")
    await store.pool_add("bob")
    assert await store.pool_pick("alice", {"bob"}) is None
    assert await store.pool_size() == 2


@pytest_twisted.ensureDeferred
async def test_pool_add_is_idempotent_and_remove_works(store):
    """Adding twice counts once; removing someone absent is harmless."""
    await store.pool_add("alice")
    await store.pool_add("alice")
    assert await store.pool_size() == 1
    await store.pool_remove("alice")
    await store.pool_remove("nobody")
    assert await store.pool_size() == 0
    assert await store.pool_pick("bob", set()) is None


@pytest_twisted.ensureDeferred
async def test_pool_pick_is_random(store):
    """Every candidate can be picked: over many picks each one comes up."""
    seen = set()
    for _ in range(200):
        for user in ("a", "b", "c", "d"):
            await store.pool_add(user)
        seen.add(await store.pool_pick("a", set()))
        for user in ("a", "b", "c", "d"):
            await store.pool_remove(user)
    assert seen == {"b", "c", "d"}


@pytest_twisted.ensureDeferred
async def test_ping(store):
    """A working store answers ping."""
    await store.ping()


def test_memory_history_expires_after_ttl():
    """
    A history lives ttl seconds after its last write, like a Redis key's TTL;
    expire() frees what has lapsed.
    """
    clock = Clock()
    store = MemoryStore(clock, ttl=100, history_size=10)
    store.save_room_message("r", message(0), at_ns=1)
    store.save_direct_message("alice", "bob", message(0))
    clock.advance(60)
    store.save_room_message("r", message(1), at_ns=2)
    clock.advance(60)
    assert len(store.room_messages("r", 10).result) == 2
    assert store.direct_messages("alice", "bob", 10).result == []
    clock.advance(100)
    store.expire()
    assert store.room_messages("r", 10).result == []
    assert store._room_history == {} and store._direct_history == {}
