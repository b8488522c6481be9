"""
The sessions seam (L{aleatoria.domain.ports.ISessions}), held to one
contract on every backend: who is where, which rooms each user is in,
which members each room has, and what a released user spent.
"""

import json

import pytest_twisted
from zope.interface.verify import verifyObject

from aleatoria.domain.ports import ISessions
from aleatoria.domain.values import Claim


async def members(sessions, room):
    page, _, _ = await sessions.room_members(room, 1000, "")
    return page


def test_provides_the_interface(backend):
    assert verifyObject(ISessions, backend.sessions)


@pytest_twisted.ensureDeferred
async def test_membership_both_ways(backend):
    """Joining is visible from the room and from the user; leaving undoes it."""
    sessions = backend.sessions
    await sessions.claim("alice")
    await sessions.claim("bob")
    await sessions.join_room("r", "bob")
    await sessions.join_room("r", "alice")
    await sessions.join_room("s", "alice")
    assert await members(sessions, "r") == ["alice", "bob"]
    assert await sessions.user_rooms("alice") == ["r", "s"]
    await sessions.leave_room("r", "alice")
    assert await members(sessions, "r") == ["bob"]
    assert await sessions.user_rooms("alice") == ["s"]
    await sessions.leave_room("r", "bob")
    assert await members(sessions, "r") == []


@pytest_twisted.ensureDeferred
async def test_members_without_a_session_are_not_listed(backend):
    """A member whose session ended elsewhere (or never began) is not listed."""
    sessions = backend.sessions
    await sessions.claim("alice")
    await sessions.join_room("r", "alice")
    await sessions.join_room("r", "ghost")
    assert await members(sessions, "r") == ["alice"]


@pytest_twisted.ensureDeferred
async def test_members_are_paged_by_id(backend):
    """
    A page is up to limit ids in order (of their UTF-8 bytes, the same as of
    their code points), those after the cursor, whether or not the cursor is
    a member; with the count of them all and the cursor of the next page.
    """
    sessions = backend.sessions
    users = ["zoe", "Zoë", "ébène", "bob", "alice", "carol", "日本"]
    for user in users:
        await sessions.claim(user)
        await sessions.join_room("r", user)
    ordered = sorted(users)
    assert ordered == sorted(users, key=str.encode)
    assert await sessions.room_members("r", 3, "") == (ordered[:3], 7, ordered[2])
    assert await sessions.room_members("r", 3, ordered[2]) == (ordered[3:6], 7, ordered[5])
    assert await sessions.room_members("r", 3, ordered[5]) == (ordered[6:], 7, None)
    assert await sessions.room_members("r", 7, "") == (ordered, 7, None)
    assert await sessions.room_members("r", 2, "bz") == (["carol", "zoe"], 7, "zoe")
    assert await sessions.room_members("r", 2, "日本") == ([], 7, None)
    assert await sessions.room_members("nobody-here", 2, "") == ([], 0, None)


@pytest_twisted.ensureDeferred
async def test_members_leave_the_pages_whenever_their_membership_ends(backend):
    """
    Leaving, a release, and a claim of the user that ends its earlier
    session each take the member off the pages and the count.
    """
    sessions = backend.sessions
    for user in ("a", "b", "c", "d"):
        await sessions.claim(user)
        await sessions.join_room("r", user)
        await sessions.join_room("s", user)
    await sessions.leave_room("r", "a")
    await sessions.release("b")
    await sessions.claim("c")
    assert await sessions.room_members("r", 10, "") == (["d"], 1, None)
    assert await sessions.room_members("s", 1, "") == (["a"], 2, "a")
    await sessions.join_room("r", "c")
    assert await sessions.room_members("r", 10, "a") == (["c", "d"], 2, None)


@pytest_twisted.ensureDeferred
async def test_rooms_are_paged_by_name_with_their_live_members(backend):
    sessions = backend.sessions
    for user, room in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "z")):
        await sessions.claim(user)
        await sessions.join_room(room, user)
    assert await sessions.rooms(2, "") == ([("x", 2), ("y", 1)], 3)
    assert await sessions.rooms(2, "y") == ([("z", 1)], 3)


@pytest_twisted.ensureDeferred
async def test_whereabouts_name_this_daemon_while_the_session_lasts(backend):
    sessions = backend.sessions
    assert await sessions.whereabouts("alice") is None
    await sessions.claim("alice")
    assert await sessions.whereabouts("alice") == sessions.node
    await sessions.release("alice")
    assert await sessions.whereabouts("alice") is None


@pytest_twisted.ensureDeferred
async def test_release_of_a_never_claimed_user_is_harmless(backend):
    """Releasing a user nobody claimed changes nothing."""
    assert await backend.sessions.release("ghost") is None


@pytest_twisted.ensureDeferred
async def test_claim_ends_a_session_still_on_record(backend):
    """A claim while an older session of the user is on record ends that one first."""
    sessions, matchmaking = backend.sessions, backend.matchmaking
    assert await sessions.claim("alice") == Claim(None, None)
    await sessions.join_room("r", "alice")
    await matchmaking.offer("alice")
    await sessions.claim("bob")
    await matchmaking.pair("bob", "")
    claim = await sessions.claim("alice")
    assert claim.previous_owner is not None and claim.former_peer == "bob"
    assert claim.rooms == ("r",)
    assert await sessions.user_rooms("alice") == []
    assert await matchmaking.match_of("bob") is None
    assert await matchmaking.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_a_spent_budget_outlives_the_session(backend):
    """
    What a released user had spent of its message budget comes back with
    its next claim, on whichever daemon, and only once.
    """
    sessions = backend.sessions
    await sessions.claim("alice")
    await sessions.release("alice", 30)
    claim = await sessions.claim("alice")
    assert 25 < claim.budget_refills_in <= 30
    await sessions.release("alice")
    assert (await sessions.claim("alice")).budget_refills_in is None


@pytest_twisted.ensureDeferred
async def test_daemons_count_this_one_as_of_now(backend):
    (daemon,) = await backend.sessions.daemons()
    assert daemon == {"node": backend.sessions.node, "connections": 0, "rooms": 0}


@pytest_twisted.ensureDeferred
async def test_ping(backend):
    """A working backend answers ping: memory has nothing to ask, Redis says PONG."""
    assert await backend.sessions.ping() == {"memory": None, "redis": "PONG"}[backend.kind]


@pytest_twisted.ensureDeferred
async def test_redis_resync_lists_the_members_again(own_redis):
    """
    After Redis lost everything, a daemon's resync makes its users members
    again: listed, counted and paged as before.
    """
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    from aleatoria.daemon.backends import make_backend
    from aleatoria.ops.reporting import Reporter

    from ..support.servers import redis_config, started

    backend = await started(make_backend(redis_config(own_redis.port), reactor,
                                         Reporter(clock=reactor).daemon))
    sessions = backend.sessions
    try:
        await sessions.claim("alice")
        await sessions.join_room("r", "alice")
        await deferToThread(own_redis.raw, "FLUSHALL")
        assert await sessions.room_members("r", 10, "") == ([], 0, None)
        await backend.commands.run("resync", backend.node,
                                   json.dumps({"alice": ["r"], "bob": ["r"]}), 60_000, "",
                                   backend.commands.era)
        assert await sessions.room_members("r", 1, "") == (["alice"], 2, "alice")
    finally:
        await backend.stopService()
