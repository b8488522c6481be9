"""
Held matches (issue #25, section 2), one contract on every backend: a
session released with C{hold} keeps its match for the call grace; a
claim takes it back; a hangup, a skip or the end of the grace end it.
"""

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from aleatoria.domain.matchmaking import IMPOLITE, POLITE, Match, Pairing
from aleatoria.domain.values import Claim

from ..support.servers import redis_config, started

GRACE = 0.3


@pytest_twisted.async_yield_fixture(params=["memory", "redis"])
async def backend(request):
    """Each backend with a grace of L{GRACE} seconds, started with a recording receiver."""
    from aleatoria.daemon.backends import make_backend
    from aleatoria.memory.backend import MemoryBackend
    from aleatoria.ops.reporting import Reporter

    if request.param == "memory":
        clock = Clock()
        made = await started(MemoryBackend(clock, ttl=3600, history_size=5, call_grace=GRACE))
        made.fake_clock = clock
        yield made
        made.stopService()
        return
    config = redis_config(request.getfixturevalue("redis_server").port, **{
        "redis-prefix": request.getfixturevalue("redis_prefix"), "call-grace": str(GRACE)})
    made = await started(make_backend(config, reactor, Reporter(clock=reactor).daemon))
    yield made
    await made.stopService()


async def matched(backend):
    """alice (impolite) and bob (polite), both with a session."""
    for user in ("alice", "bob"):
        await backend.sessions.claim(user)
    await backend.matchmaking.offer("bob")
    assert (await backend.matchmaking.pair("alice", "")).fresh


async def graces_pass(backend):
    """Let the grace of what is held now be over, and the backend's sweep run."""
    clock = getattr(backend, "fake_clock", None)
    if clock is not None:
        clock.advance(GRACE)
        clock.advance(GRACE)
        return
    for _ in range(100):
        if any(entry[0] == "lapsed" for entry in backend.receiver.handed):
            return
        await deferLater(reactor, 0.05, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_held_match_is_claimed_back(backend):
    """Released with hold: no former partner, the match stands, a claim takes it back."""
    sessions, matchmaking = backend.sessions, backend.matchmaking
    await matched(backend)
    assert await sessions.release("bob", hold=True) is None
    assert await matchmaking.match_of("alice") == Match("bob", IMPOLITE)
    assert 0 < await matchmaking.grace_left("bob") <= GRACE * 1000
    assert await matchmaking.grace_left("alice") == 0
    claim = await sessions.claim("bob")
    assert claim == Claim(None, None, resumed=Match("alice", POLITE))
    assert await matchmaking.grace_left("bob") == 0
    assert (await sessions.claim("bob")).resumed == Match("alice", POLITE)
    assert await sessions.release("bob") == "alice"


@pytest_twisted.ensureDeferred
async def test_a_release_without_hold_ends_the_match(backend):
    await matched(backend)
    assert await backend.sessions.release("bob") == "alice"
    assert await backend.matchmaking.match_of("alice") is None


@pytest_twisted.ensureDeferred
async def test_pairing_keeps_a_held_partner(backend):
    """A request of the partner of a user away answers the match; a skip ends it."""
    matchmaking = backend.matchmaking
    await matched(backend)
    await backend.sessions.release("bob", hold=True)
    assert await matchmaking.pair("alice", "") == Pairing(Match("bob", IMPOLITE))
    assert await matchmaking.pair("alice", "bob") == Pairing(None, skipped="bob")
    assert await matchmaking.grace_left("bob") == 0
    assert (await backend.sessions.claim("bob")).resumed is None


@pytest_twisted.ensureDeferred
async def test_a_hang_up_ends_a_held_match(backend):
    await matched(backend)
    await backend.sessions.release("bob", hold=True)
    assert await backend.matchmaking.hang_up("alice", "bob") is True
    assert (await backend.sessions.claim("bob")).resumed is None


@pytest_twisted.ensureDeferred
async def test_a_held_match_lapses_after_the_grace(backend):
    """Past the grace the match is over, and the receiver told whose partner lost it."""
    await matched(backend)
    await backend.sessions.release("bob", hold=True)
    await graces_pass(backend)
    assert ("lapsed", "bob", "alice") in backend.receiver.handed
    assert await backend.matchmaking.match_of("alice") is None
    assert (await backend.sessions.claim("bob")).resumed is None
