"""
The matchmaking seam (L{aleatoria.domain.ports.IMatchmaking}), held to
one contract on every backend: the rules of L{aleatoria.domain.matchmaking},
each step atomic.
"""

import pytest_twisted
from zope.interface.verify import verifyObject

from aleatoria.domain.matchmaking import IMPOLITE, POLITE, Ask, Match, Pairing, Seat
from aleatoria.domain.ports import IMatchmaking


async def offer(backend, *users):
    """Connected users (the hub claims every user first) say they are available."""
    for user in users:
        await backend.sessions.claim(user)
        await backend.matchmaking.offer(user)


def test_provides_the_interface(backend):
    assert verifyObject(IMatchmaking, backend.matchmaking)


@pytest_twisted.ensureDeferred
async def test_pair_assigns_roles_and_empties_the_pool(backend):
    """A pairing makes the requester impolite, the peer polite; both leave the pool."""
    matchmaking = backend.matchmaking
    await offer(backend, "alice", "bob")
    assert await matchmaking.pair("alice", "") == Pairing(Match("bob", IMPOLITE), fresh=True)
    assert await matchmaking.match_of("bob") == Match("alice", POLITE)
    assert await matchmaking.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_requester_need_not_be_in_the_pool(backend):
    """Anyone connected may request; only the pool is picked from."""
    await backend.sessions.claim("alice")
    await offer(backend, "bob")
    assert (await backend.matchmaking.pair("alice", "")).match == Match("bob", IMPOLITE)


@pytest_twisted.ensureDeferred
async def test_pair_excludes_self_and_skipped(backend):
    """Neither the requester nor currentPeerId is ever picked."""
    matchmaking = backend.matchmaking
    await offer(backend, "alice", "bob", "carol")
    for _ in range(10):
        pairing = await matchmaking.pair("alice", "bob")
        assert pairing.match.peer == "carol"
        await matchmaking.hang_up("alice", "carol")
        await offer(backend, "alice", "carol")


@pytest_twisted.ensureDeferred
async def test_nobody_fits_changes_nothing(backend):
    """No fit: no match, and the pool (requester included) stays as it was."""
    await offer(backend, "alice", "bob")
    assert await backend.matchmaking.pair("alice", "bob") == Pairing(None)
    assert await backend.matchmaking.pool_size() == 2


@pytest_twisted.ensureDeferred
async def test_matched_requester_gets_its_match_again(backend):
    """A request that crossed its own assignment repeats it and picks nobody."""
    matchmaking = backend.matchmaking
    await backend.sessions.claim("alice")
    await offer(backend, "bob", "carol")
    first = await matchmaking.pair("alice", "")
    assert await matchmaking.pair("alice", "") == Pairing(first.match)
    peer = first.match.peer
    assert await matchmaking.pair(peer, "") == Pairing(Match("alice", POLITE))
    assert await matchmaking.pool_size() == 1


@pytest_twisted.ensureDeferred
async def test_skip_ends_the_match_and_pairs_anew(backend):
    """Naming the current peer skips it: a new partner, the old one reported."""
    matchmaking = backend.matchmaking
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await matchmaking.pair("alice", "")
    await offer(backend, "carol")
    pairing = await matchmaking.pair("alice", "bob")
    assert pairing == Pairing(Match("carol", IMPOLITE), fresh=True, skipped="bob")
    assert await matchmaking.match_of("bob") is None


@pytest_twisted.ensureDeferred
async def test_skip_with_nobody_left(backend):
    """A skip ends the match even when there is nobody new."""
    matchmaking = backend.matchmaking
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await matchmaking.pair("alice", "")
    assert await matchmaking.pair("alice", "bob") == Pairing(None, skipped="bob")
    assert await matchmaking.match_of("alice") is None


@pytest_twisted.ensureDeferred
async def test_hang_up_only_between_partners(backend):
    """hang_up ends a match only when the two are matched with each other."""
    matchmaking = backend.matchmaking
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await matchmaking.pair("alice", "")
    assert await matchmaking.hang_up("alice", "carol") is False
    assert await matchmaking.hang_up("bob", "alice") is True
    assert await matchmaking.match_of("alice") is None
    assert await matchmaking.hang_up("alice", "bob") is False


@pytest_twisted.ensureDeferred
async def test_offer_during_a_match_waits_for_its_end(backend):
    """Available while matched: into the pool when the match ends, not before."""
    matchmaking = backend.matchmaking
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await matchmaking.pair("alice", "")
    await matchmaking.offer("alice")
    assert await matchmaking.pool_size() == 0
    await matchmaking.hang_up("alice", "bob")
    assert await matchmaking.pool_size() == 1
    await backend.sessions.claim("carol")
    assert (await matchmaking.pair("carol", "")).match.peer == "alice"


@pytest_twisted.ensureDeferred
async def test_withdraw(backend):
    """Unavailable: out of the pool, and no longer waiting for a match to end."""
    matchmaking = backend.matchmaking
    await offer(backend, "alice", "bob")
    await matchmaking.withdraw("alice")
    assert await matchmaking.pool_size() == 1
    await backend.sessions.claim("carol")
    await matchmaking.pair("carol", "")
    await offer(backend, "carol")
    await matchmaking.withdraw("carol")
    await matchmaking.hang_up("carol", "bob")
    assert await matchmaking.pool_size() == 0


@pytest_twisted.ensureDeferred
async def test_pair_is_random(backend):
    """Every candidate can come up."""
    matchmaking = backend.matchmaking
    await backend.sessions.claim("a")
    seen = set()
    for _ in range(60):
        await offer(backend, "b", "c", "d")
        pairing = await matchmaking.pair("a", "")
        seen.add(pairing.match.peer)
        await matchmaking.hang_up("a", pairing.match.peer)
        for user in ("b", "c", "d"):
            await matchmaking.withdraw(user)
    assert seen == {"b", "c", "d"}


@pytest_twisted.ensureDeferred
async def test_release_ends_everything_of_the_user(backend):
    """Releasing a user takes it out of rooms and pool and ends its match."""
    sessions, matchmaking = backend.sessions, backend.matchmaking
    await sessions.claim("alice")
    await sessions.join_room("r", "alice")
    await offer(backend, "bob", "alice")
    await matchmaking.pair("bob", "")
    assert await sessions.release("alice") == "bob"
    assert await sessions.room_members("r", 10, "") == ([], 0, None)
    assert await sessions.user_rooms("alice") == []
    assert await matchmaking.match_of("bob") is None
    assert await sessions.release("alice") is None


@pytest_twisted.ensureDeferred
async def test_no_rematch_within_the_time(backend):
    """Two users whose match ended are not paired again within Ask.rematch_after."""
    matchmaking = backend.matchmaking
    ask = Ask(rematch_after=600)
    await offer(backend, "alice", "bob")
    assert (await matchmaking.pair("alice", "", ask)).match.peer == "bob"
    assert await matchmaking.hang_up("bob", "alice")
    await offer(backend, "alice")
    for other in ("carol", "dave", "erin", "frank"):
        await offer(backend, other)
        assert (await matchmaking.pair("bob", "", ask)).match.peer == other
        await matchmaking.hang_up("bob", other)
    await offer(backend, "bob")
    assert (await matchmaking.pair("alice", "", ask)).match is None


@pytest_twisted.ensureDeferred
async def test_segments_partition_the_pool(backend):
    """A request picks only users of its segment; a seat is kept until withdrawn."""
    matchmaking = backend.matchmaking
    for user, segment in (("teen1", "teen"), ("adult1", "adult"), ("plain", "default")):
        await backend.sessions.claim(user)
        await matchmaking.offer(user, Seat(segment))
    for _ in range(5):
        assert (await matchmaking.pair("adult2", "", Ask(segment="adult"))).match.peer == "adult1"
        assert await matchmaking.hang_up("adult1", "adult2")
        await matchmaking.offer("adult1", None)
    assert (await matchmaking.pair("x", "", Ask(segment="kids"))).match is None
    assert (await matchmaking.pair("y", "", Ask(segment="a:b%"))).match is None
    assert (await matchmaking.pair("z", "", Ask())).match.peer == "plain"
    await matchmaking.withdraw("teen1")
    await matchmaking.offer("teen1", None)
    assert (await matchmaking.pair("teen2", "", Ask(segment="teen"))).match is None
    assert await matchmaking.pool_size() == 2


@pytest_twisted.ensureDeferred
async def test_interests_are_preferred_within_the_segment(backend):
    """
    A request finds the one user sharing an interest among many, within its
    segment only; with only=True and nobody sharing one it enters the pool
    with its interests, where a request for them finds it.
    """
    matchmaking = backend.matchmaking
    for n in range(30):
        await backend.sessions.claim(f"u{n}")
        await matchmaking.offer(f"u{n}", Seat("default", ("golf",)))
    await backend.sessions.claim("fan")
    await matchmaking.offer("fan", Seat("teen:x", ("jazz", "chess")))
    await backend.sessions.claim("fan2")
    await matchmaking.offer("fan2", Seat("default", ("chess", "jazz")))
    pairing = await matchmaking.pair("me", "", Ask(interests=("jazz", "tennis")))
    assert pairing.match == Match("fan2", IMPOLITE, ("jazz",))
    assert await matchmaking.match_of("fan2") == Match("me", POLITE, ("jazz",))
    alone = Ask(segment="teen:x", interests=("golf",), only=True)
    await backend.sessions.claim("kid")
    assert (await matchmaking.pair("kid", "", alone)) == Pairing(None)
    pairing = await matchmaking.pair("kid2", "", Ask(segment="teen:x", interests=("golf",)))
    assert pairing.match == Match("kid", IMPOLITE, ("golf",))
    pairing = await matchmaking.pair("kid3", "", Ask(segment="teen:x"))
    assert pairing.match == Match("fan", IMPOLITE)
