"""
The blocks seam (L{aleatoria.domain.safety_ports.IBlocks}), held to one contract
on every backend -- and what the other seams make of a block: never
paired, in either role; no direct message kept between the two.
"""

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from aleatoria.domain.events import DirectMessage
from aleatoria.domain.matchmaking import IMPOLITE, Match, Pairing
from aleatoria.domain.refusals import Forbidden
from aleatoria.domain.safety_ports import IBlocks
from aleatoria.domain.values import Blocking

from .test_contract_matchmaking import offer


def test_provides_the_interface(backend):
    assert verifyObject(IBlocks, backend.blocks)


@pytest_twisted.ensureDeferred
async def test_block_unblock_and_list(backend):
    """A block is kept until undone; blocking twice adds nothing; the list is sorted."""
    blocks = backend.blocks
    assert await blocks.block("alice", "carol") == Blocking(True)
    assert await blocks.block("alice", "bob:1") == Blocking(True)
    assert await blocks.block("alice", "carol") == Blocking(False)
    assert await blocks.blocked("alice") == ["bob:1", "carol"]
    assert await blocks.blocked("carol") == []
    assert await blocks.unblock("alice", "carol") is True
    assert await blocks.unblock("alice", "carol") is False
    assert await blocks.blocked("alice") == ["bob:1"]


@pytest_twisted.ensureDeferred
async def test_between_is_either_way(backend):
    """Either of the two blocking the other is a block between them."""
    blocks = backend.blocks
    await blocks.block("alice", "bob")
    assert await blocks.between("alice", "bob") is True
    assert await blocks.between("bob", "alice") is True
    assert await blocks.between("alice", "carol") is False
    await blocks.unblock("alice", "bob")
    assert await blocks.between("bob", "alice") is False


@pytest_twisted.ensureDeferred
async def test_one_too_many_is_refused(backend):
    """Past C{most}, a new block is refused and nothing kept; one held already passes."""
    blocks = backend.blocks
    for user in ("b", "c"):
        await blocks.block("a", user, 2)
    assert await blocks.block("a", "d", 2) == Blocking(False, full=True)
    assert await blocks.block("a", "c", 2) == Blocking(False)
    assert await blocks.blocked("a") == ["b", "c"]
    assert await blocks.block("a", "d") == Blocking(True)


@pytest_twisted.ensureDeferred
async def test_block_ends_the_match_of_the_two(backend):
    """Blocking one's partner ends the match; blocking somebody else leaves it."""
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await backend.matchmaking.pair("alice", "")
    assert await backend.blocks.block("alice", "carol") == Blocking(True)
    assert await backend.matchmaking.match_of("alice") == Match("bob", IMPOLITE)
    assert await backend.blocks.block("bob", "alice") == Blocking(True, ended=True)
    assert await backend.matchmaking.match_of("alice") is None
    assert await backend.matchmaking.match_of("bob") is None


@pytest.mark.parametrize("blocker", ["alice", "bob"])
@pytest_twisted.ensureDeferred
async def test_never_paired_either_way(backend, blocker):
    """With a block between them, in either direction, nobody is paired with the other."""
    blocked = {"alice": "bob", "bob": "alice"}[blocker]
    await backend.blocks.block(blocker, blocked)
    await offer(backend, "alice", "bob")
    for requester in ("alice", "bob"):
        assert await backend.matchmaking.pair(requester, "") == Pairing(None)
    await offer(backend, "carol")
    assert (await backend.matchmaking.pair("alice", "")).match == Match("carol", IMPOLITE)
    await backend.matchmaking.hang_up("alice", "carol")
    await backend.blocks.unblock(blocker, blocked)
    await offer(backend, "alice")
    assert (await backend.matchmaking.pair("bob", "")).match == Match("alice", IMPOLITE)


@pytest_twisted.ensureDeferred
async def test_pairs_past_many_blocked(backend):
    """
    A requester who blocked all of the pool but one is paired with that
    one (on Redis, past 64 samples, a pool of up to 1 000 is read whole).
    """
    users = [f"u{n}" for n in range(200)]
    await offer(backend, *users)
    await backend.sessions.claim("alice")
    for user in users[:-1]:
        await backend.blocks.block("alice", user)
    pairing = await backend.matchmaking.pair("alice", "")
    assert pairing.match == Match(users[-1], IMPOLITE)


@pytest.mark.parametrize("blocker", ["alice", "bob"])
@pytest_twisted.ensureDeferred
async def test_no_direct_message_is_kept(backend, blocker):
    """A direct message either way between the two is refused, and nothing kept."""
    streams = backend.streams
    await backend.blocks.block(blocker, {"alice": "bob", "bob": "alice"}[blocker])
    for sender, recipient in (("alice", "bob"), ("bob", "alice")):
        message = DirectMessage(sender, recipient, "hi", f"m-{sender}", "t")
        with pytest.raises(Forbidden):
            await streams.post_direct(message)
        assert await streams.direct_history(sender, recipient, 10) == []
        assert await streams.conversations(recipient, 10) == []
    await backend.blocks.unblock(blocker, {"alice": "bob", "bob": "alice"}[blocker])
    await streams.post_direct(DirectMessage("alice", "bob", "hi", "m", "t"))
    assert len(await streams.direct_history("bob", "alice", 10)) == 1
