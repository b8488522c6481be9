"""
The L{IStore} contract, run against every backend. A new backend passes
this file before the daemon may use it.
"""

import pytest_twisted
from msgspec import UNSET
from msgspec.structs import replace
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from aleatoria.daemon.service import make_store
from aleatoria.domain.matchmaking import IMPOLITE, POLITE, Match, Pairing
from aleatoria.domain.ports import IStore
from aleatoria.domain.values import Claim, Since
from aleatoria.edge.wire import Envelope
from aleatoria.memory.store import MemoryStore

from .conftest import connected, joined, redis_config

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
    peers = await joined(store)
    yield store
    await peers.stopService()
    await store.stopService()


def message(n, sender="alice", **fields):
    return Envelope(type="chat_message", fromUser=sender, payload={"content": str(n)},
                    createTime=f"t{n}", **fields)


def contents(envelopes):
    return [e.payload["content"] for e in envelopes]


async def members(store, room):
    """All the listed members of C{room} (one page holds them in these tests)."""
    page, count, following = await store.room_members(room, 1000, "")
    assert (count, following) == (len(page), None)
    return page


def test_provides_the_interface(store):
    """Every backend fully provides IStore."""
    assert verifyObject(IStore, store)


@pytest_twisted.ensureDeferred
async def test_membership_both_ways(store):
    """Joining is visible from the room and from the user; leaving undoes it."""
    await store.claim("alice")
    await store.claim("bob")
    await store.join_room("r", "bob")
    await store.join_room("r", "alice")
    await store.join_room("s", "alice")
    assert await members(store, "r") == ["alice", "bob"]
    assert await store.user_rooms("alice") == ["r", "s"]
    await store.leave_room("r", "alice")
    assert await members(store, "r") == ["bob"]
    assert await store.user_rooms("alice") == ["s"]
    await store.leave_room("r", "bob")
    assert await members(store, "r") == []


@pytest_twisted.ensureDeferred
async def test_members_without_a_session_are_not_listed(store):
    """A member whose session ended elsewhere (or never began) is not listed."""
    await store.claim("alice")
    await store.join_room("r", "alice")
    await store.join_room("r", "ghost")
    assert await members(store, "r") == ["alice"]


@pytest_twisted.ensureDeferred
async def test_members_are_paged_by_id(store):
    """
    A page is up to limit ids in order (of their UTF-8 bytes, the same as of
    their code points), those after the cursor, whether or not the cursor is
    a member; with the count of them all and the cursor of the next page.
    """
    users = ["zoe", "Zoë", "ébène", "bob", "alice", "carol", "日本"]
    for user in users:
        await store.claim(user)
        await store.join_room("r", user)
    ordered = sorted(users)
    assert ordered == sorted(users, key=str.encode)
    assert await store.room_members("r", 3, "") == (ordered[:3], 7, ordered[2])
    assert await store.room_members("r", 3, ordered[2]) == (ordered[3:6], 7, ordered[5])
    assert await store.room_members("r", 3, ordered[5]) == (ordered[6:], 7, None)
    assert await store.room_members("r", 7, "") == (ordered, 7, None)
    assert await store.room_members("r", 2, "bz") == (["carol", "zoe"], 7, "zoe")
    assert await store.room_members("r", 2, "日本") == ([], 7, None)
    assert await store.room_members("nobody-here", 2, "") == ([], 0, None)


@pytest_twisted.ensureDeferred
async def test_members_leave_the_pages_whenever_their_membership_ends(store):
    """
    Leaving, a release, and a claim of the user that ends its earlier
    session each take the member off the pages and the count.
    """
    for user in ("a", "b", "c", "d"):
        await store.claim(user)
        await store.join_room("r", user)
        await store.join_room("s", user)
    await store.leave_room("r", "a")
    await store.release("b")
    await store.claim("c")
    assert await store.room_members("r", 10, "") == (["d"], 1, None)
    assert await store.room_members("s", 1, "") == (["a"], 2, "a")
    await store.join_room("r", "c")
    assert await store.room_members("r", 10, "a") == (["c", "d"], 2, None)


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
    place, missed = await store.save_room_message("r", saved, at_ns=5)
    assert (place.offset, missed) == (1, 0)
    assert await store.room_messages("r", 1) == [
        replace(saved, offset=1, epoch=place.epoch)]


@pytest_twisted.ensureDeferred
async def test_a_room_stream_is_numbered_and_read_after_an_offset(store):
    """
    A room's messages are numbered 1, 2, 3... in one epoch; what follows an
    offset reads back in order, and says whether it is all there.
    """
    places = [(await store.save_room_message("r", message(n), at_ns=n + 1))[0]
              for n in range(HISTORY_SIZE + 2)]
    assert [p.offset for p in places] == list(range(1, HISTORY_SIZE + 3))
    assert len({p.epoch for p in places}) == 1 and places[0].epoch
    epoch = places[0].epoch
    since = await store.room_since("r", HISTORY_SIZE - 1, epoch)
    assert (since.epoch, since.last, since.complete) == (epoch, HISTORY_SIZE + 2, True)
    assert [m.offset for m in since.messages] == [HISTORY_SIZE, HISTORY_SIZE + 1,
                                                  HISTORY_SIZE + 2]
    assert contents(since.messages) == [str(HISTORY_SIZE - 1), str(HISTORY_SIZE),
                                        str(HISTORY_SIZE + 1)]
    whole = await store.room_since("r", 2, epoch)
    assert whole.complete and [m.offset for m in whole.messages] == list(
        range(3, HISTORY_SIZE + 3))
    assert (await store.room_since("r", HISTORY_SIZE + 2, epoch)).messages == []
    assert await store.room_since("nothing-said", 0, "") == Since("", 0, [], True)


@pytest_twisted.ensureDeferred
async def test_a_stream_reads_no_messages_it_could_not_replay_whole(store):
    """
    Nothing is read when the client could not have all it missed: another
    epoch, an offset past the last, a gap beyond what is kept -- only where
    the stream stands. Offset 0 asks for all of any epoch.
    """
    for n in range(HISTORY_SIZE + 2):
        place, _ = await store.save_room_message("r", message(n), at_ns=n + 1)
        await store.save_direct_message("bob", "alice", message(n, sender="bob"))
    last = HISTORY_SIZE + 2
    inbox_epoch = (await store.inbox_since("alice", last, "")).epoch
    for read, epoch in ((lambda *a: store.room_since("r", *a), place.epoch),
                        (lambda *a: store.inbox_since("alice", *a), inbox_epoch)):
        for offset, claimed in ((last - 1, "another"), (1, epoch), (1, "another"),
                                (last, "another")):
            assert await read(offset, claimed) == Since(epoch, last, [], False)
        assert await read(last, epoch) == Since(epoch, last, [], True)
        assert (await read(last + 5, epoch)).messages == []
        assert [m.offset for m in (await read(0, "another")).messages] == []
        assert [m.offset for m in (await read(2, epoch)).messages] == list(range(3, last + 1))
        assert (await read(last - 1, "")).messages == []
    await store.save_direct_message("a:b", "bob", message(0, sender="a:b"))
    assert contents((await store.inbox_since("a:b", 0, "")).messages) == ["0"]


@pytest_twisted.ensureDeferred
async def test_each_party_numbers_a_direct_message_in_its_inbox(store):
    """
    A direct message goes into both parties' inboxes, each numbering it its
    own way; the pair's history reads back numbered as the reader's inbox
    numbers it; system, who writes through the server API, has no inbox.
    """
    places, _ = await store.save_direct_message("alice", "bob", message(0))
    assert {u: p.offset for u, p in places.items()} == {"alice": 1, "bob": 1}
    await store.save_direct_message("carol", "alice", message(1, sender="carol"))
    places, _ = await store.save_direct_message("bob", "alice",
                                                message(2, sender="bob"))
    assert {u: p.offset for u, p in places.items()} == {"alice": 3, "bob": 2}
    places, _ = await store.save_direct_message("system", "bob",
                                                message(3, sender="system"))
    assert list(places) == ["bob"] and places["bob"].offset == 3

    mine = await store.direct_messages("alice", "bob", 10)
    assert [(m.offset, m.epoch) for m in mine] == [(1, places_epoch := mine[0].epoch),
                                                   (3, places_epoch)]
    theirs = await store.direct_messages("bob", "alice", 10)
    assert [m.offset for m in theirs] == [1, 2]
    assert all(m.positions is UNSET for m in mine + theirs)
    since = await store.inbox_since("alice", 1, mine[0].epoch)
    assert (since.last, since.complete, contents(since.messages)) == (3, True, ["1", "2"])
    assert [m.offset for m in since.messages] == [2, 3]
    assert await store.inbox_since("nobody", 0, "") == Since("", 0, [], True)


@pytest_twisted.ensureDeferred
async def test_conversations_most_recent_first_with_unread_counts(store):
    await store.save_direct_message("alice", "bob", message(0))
    await store.save_direct_message("carol", "alice", message(1, sender="carol"))
    await store.save_direct_message("carol", "alice", message(2, sender="carol"))
    await store.save_direct_message("alice", "dave", message(3))
    found = await store.conversations("alice", 10)
    assert [(c.with_user, c.unread, c.last.offset, c.last.payload["content"])
            for c in found] == [("dave", 0, 4, "3"), ("carol", 2, 3, "2"), ("bob", 0, 1, "0")]
    page = await store.conversations("alice", 2)
    assert [c.with_user for c in page] == ["dave", "carol"]
    rest = await store.conversations("alice", 2, before=page[-1].last.offset)
    assert [c.with_user for c in rest] == ["bob"]
    assert [(c.with_user, c.unread) for c in await store.conversations("bob", 10)] == [
        ("alice", 1)]

    assert await store.mark_read("alice", "carol", 2) == 1
    assert await store.mark_read("alice", "carol", 1) == 1
    assert await store.mark_read("alice", "carol", 3) == 0
    assert [c.unread for c in await store.conversations("alice", 10)] == [0, 0, 0]
    assert await store.mark_read("alice", "nobody", 9) == 0


@pytest_twisted.ensureDeferred
async def test_conversations_are_capped(store):
    """A user keeps its history_size most recent conversations, no more."""
    for n in range(HISTORY_SIZE + 2):
        await store.save_direct_message(f"u{n}", "alice", message(n, sender=f"u{n}"))
    found = await store.conversations("alice", 100)
    assert [c.with_user for c in found] == [f"u{n}" for n in reversed(range(2, HISTORY_SIZE + 2))]


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


async def offer(store, *users):
    """Connected users (the hub claims every user first) say they are available."""
    for user in users:
        await store.claim(user)
        await store.offer(user)


@pytest_twisted.ensureDeferred
async def test_pair_assigns_roles_and_empties_the_pool(store):
    """A pairing makes the requester impolite, the peer polite; both leave the pool."""
    await offer(store, "alice", "bob")
    pairing = await store.pair("alice", "")
    assert pairing == Pairing(Match("bob", IMPOLITE), fresh=True)
    assert await store.match_of("bob") == Match("alice", POLITE)
    assert await store.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_requester_need_not_be_in_the_pool(store):
    """Anyone connected may request; only the pool is picked from."""
    await store.claim("alice")
    await offer(store, "bob")
    assert (await store.pair("alice", "")).match == Match("bob", IMPOLITE)


@pytest_twisted.ensureDeferred
async def test_pair_excludes_self_and_skipped(store):
    """Neither the requester nor currentPeerId is ever picked."""
    await offer(store, "alice", "bob", "carol")
    for _ in range(10):
        pairing = await store.pair("alice", "bob")
        assert pairing.match.peer == "carol"
        await store.hang_up("alice", "carol")
        await offer(store, "alice", "carol")


@pytest_twisted.ensureDeferred
async def test_nobody_fits_changes_nothing(store):
    """No fit: no match, and the pool (requester included) stays as it was."""
    await offer(store, "alice", "bob")
    assert await store.pair("alice", "bob") == Pairing(None)
    assert await store.pool_size() == 2


@pytest_twisted.ensureDeferred
async def test_matched_requester_gets_its_match_again(store):
    """A request that crossed its own assignment repeats it and picks nobody."""
    await store.claim("alice")
    await offer(store, "bob", "carol")
    first = await store.pair("alice", "")
    again = await store.pair("alice", "")
    assert again == Pairing(first.match)
    peer = first.match.peer
    assert await store.pair(peer, "") == Pairing(Match("alice", POLITE))
    assert await store.pool_size() == 1


@pytest_twisted.ensureDeferred
async def test_skip_ends_the_match_and_pairs_anew(store):
    """Naming the current peer skips it: a new partner, the old one reported."""
    await offer(store, "bob")
    await store.pair("alice", "")
    await offer(store, "carol")
    pairing = await store.pair("alice", "bob")
    assert pairing == Pairing(Match("carol", IMPOLITE), fresh=True, skipped="bob")
    assert await store.match_of("bob") is None


@pytest_twisted.ensureDeferred
async def test_skip_with_nobody_left(store):
    """A skip ends the match even when there is nobody new."""
    await offer(store, "bob")
    await store.pair("alice", "")
    assert await store.pair("alice", "bob") == Pairing(None, skipped="bob")
    assert await store.match_of("alice") is None


@pytest_twisted.ensureDeferred
async def test_hang_up_only_between_partners(store):
    """hang_up ends a match only when the two are matched with each other."""
    await offer(store, "bob")
    await store.pair("alice", "")
    assert await store.hang_up("alice", "carol") is False
    assert await store.hang_up("bob", "alice") is True
    assert await store.match_of("alice") is None
    assert await store.hang_up("alice", "bob") is False


@pytest_twisted.ensureDeferred
async def test_offer_during_a_match_waits_for_its_end(store):
    """Available while matched: into the pool when the match ends, not before."""
    await offer(store, "bob")
    await store.pair("alice", "")
    await offer(store, "alice")
    assert await store.pool_size() == 0
    await store.hang_up("alice", "bob")
    assert await store.pool_size() == 1
    assert (await store.pair("carol", "")).match.peer == "alice"


@pytest_twisted.ensureDeferred
async def test_withdraw(store):
    """Unavailable: out of the pool, and no longer waiting for a match to end."""
    await offer(store, "alice", "bob")
    await store.withdraw("alice")
    assert await store.pool_size() == 1
    await store.pair("carol", "")
    await offer(store, "carol")
    await store.withdraw("carol")
    await store.hang_up("carol", "bob")
    assert await store.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_pair_is_random(store):
    """Every candidate can come up."""
    await store.claim("a")
    seen = set()
    for _ in range(60):
        await offer(store, "b", "c", "d")
        pairing = await store.pair("a", "")
        seen.add(pairing.match.peer)
        await store.hang_up("a", pairing.match.peer)
        for user in ("b", "c", "d"):
            await store.withdraw(user)
    assert seen == {"b", "c", "d"}


@pytest_twisted.ensureDeferred
async def test_release_ends_everything_of_the_user(store):
    """Releasing a user takes it out of rooms and pool and ends its match."""
    await store.claim("alice")
    await store.join_room("r", "alice")
    await offer(store, "bob", "alice")
    await store.pair("bob", "")
    assert await store.release("alice") == "bob"
    assert await members(store, "r") == []
    assert await store.user_rooms("alice") == []
    assert await store.match_of("bob") is None
    assert await store.release("alice") is None


@pytest_twisted.ensureDeferred
async def test_release_of_a_never_claimed_user_is_harmless(store):
    """Releasing a user nobody claimed changes nothing."""
    assert await store.release("ghost") is None


@pytest_twisted.ensureDeferred
async def test_claim_ends_a_session_still_on_record(store):
    """A claim while an older session of the user is on record ends that one first."""
    assert await store.claim("alice") == Claim(None, None)
    await store.join_room("r", "alice")
    await offer(store, "alice")
    await store.pair("bob", "")
    claim = await store.claim("alice")
    assert claim.previous_owner is not None and claim.former_peer == "bob"
    assert await store.user_rooms("alice") == []
    assert await store.match_of("bob") is None
    assert await store.pool_size() == 0


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


@pytest_twisted.ensureDeferred
async def test_a_spent_budget_outlives_the_session(store):
    """
    What a released user had spent of its message budget comes back with
    its next claim, on whichever daemon, and only once.
    """
    await store.claim("alice")
    await store.release("alice", 30)
    claim = await store.claim("alice")
    assert 25 < claim.rested_in <= 30
    await store.release("alice")
    assert (await store.claim("alice")).rested_in is None



@pytest_twisted.ensureDeferred
async def test_redis_resync_lists_the_members_again(own_redis):
    """
    After Redis lost everything, a daemon's resync makes its users members
    again: listed, counted and paged as before.
    """
    import json

    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from aleatoria.redis import scripts

    store = await connected(make_store(redis_config(own_redis.port), reactor))
    try:
        await store.claim("alice")
        await store.join_room("r", "alice")
        await deferToThread(own_redis.raw, "FLUSHALL")
        assert await store.room_members("r", 10, "") == ([], 0, None)
        await store.run(scripts.RESYNC, store.node, json.dumps({"alice": ["r"], "bob": ["r"]}),
                        60_000)
        assert await store.room_members("r", 1, "") == (["alice"], 2, "alice")
    finally:
        await store.stopService()
