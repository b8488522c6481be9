"""
The bans seam (L{aleatoria.domain.safety_ports.IBans}), held to one contract on
every backend: a ban is kept until it ends or is lifted; on Redis, the
other daemons' listeners hear of both, and load what they missed. And the
domain's copy of the bans (L{aleatoria.domain.bans.BanIndex},
L{aleatoria.domain.bans.Bans}): what it matches, and a load that keeps
what changed while it was under way.
"""

import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from zope.interface.verify import verifyObject

from aleatoria.daemon.backends import make_backend
from aleatoria.domain.bans import BanIndex, Bans, network_of
from aleatoria.domain.events import Ban
from aleatoria.domain.refusals import Invalid
from aleatoria.domain.safety_ports import IBans
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.reporting import Reporter

from ..support.hub import Recorder, make_hub
from ..support.lifecycle_helpers import until
from ..support.servers import redis_config, started


def ban(ban_id, now, seconds, user="", network=""):
    return Ban(ban_id, now, now + seconds, user, network, "")


class Listener:
    """What a daemon's L{Bans} is told by the store."""

    def __init__(self, fails=0):
        self.heard = []
        self._fails = fails

    def set(self, ban):
        self.heard.append(("set", ban))

    def lifted(self, ban_id):
        self.heard.append(("lifted", ban_id))

    def load(self):
        """Fire with whether it loaded: not the first C{fails} times."""
        self.heard.append(("load",))
        self._fails -= 1
        return succeed(self._fails < 0)


def test_provides_the_interface(backend):
    assert verifyObject(IBans, backend.bans)


@pytest_twisted.ensureDeferred
async def test_a_ban_is_kept_until_it_ends_or_is_lifted(backend):
    now = time.time()
    kept, short = ban("b1", now, 600, user="bob"), ban("b2", now, 600, network="10.0.0.0/8")
    await backend.bans.add(kept)
    await backend.bans.add(short)
    assert sorted(await backend.bans.all(now), key=lambda b: b.id) == [kept, short]
    assert await backend.bans.lift("b1", now) == kept
    assert await backend.bans.lift("b1", now) is None
    assert await backend.bans.all(now) == [short]
    assert await backend.bans.lift("b2", now + 601) is None
    assert await backend.bans.all(now + 601) == []


async def _redis_backend(request, listener):
    config = redis_config(request.getfixturevalue("redis_server").port, **{
        "redis-prefix": request.getfixturevalue("redis_prefix")})
    made = make_backend(config, reactor, Reporter(clock=reactor).daemon)
    made.bans.listen(listener)
    return await started(made)


@pytest_twisted.ensureDeferred
async def test_other_daemons_hear_of_bans_and_load_at_start(request):
    """
    On Redis: each daemon's listener loads once both its links are up;
    what one daemon sets or lifts, the other hears (the first does not
    hear itself).
    """
    heard_one, heard_two = Listener(), Listener()
    one = await _redis_backend(request, heard_one)
    two = await _redis_backend(request, heard_two)
    try:
        await until(lambda: heard_two.heard == [("load",)])
        now = time.time()
        kept = ban("b1", now, 600, user="bob")
        await one.bans.add(kept)
        await until(lambda: len(heard_two.heard) == 2)
        await one.bans.lift("b1", now)
        await until(lambda: len(heard_two.heard) == 3)
        assert heard_two.heard == [("load",), ("set", kept), ("lifted", "b1")]
        assert heard_one.heard == [("load",)]
    finally:
        await one.stopService()
        await two.stopService()


@pytest_twisted.ensureDeferred
async def test_a_failed_load_is_tried_again(request, monkeypatch):
    """A load that failed (Redis too slow, say) is tried again a little later, until it works."""
    from aleatoria.redis import bans

    monkeypatch.setattr(bans, "RELOAD_SECONDS", 0.05)
    listener = Listener(fails=2)
    backend = await _redis_backend(request, listener)
    try:
        await until(lambda: len(listener.heard) == 3)
    finally:
        await backend.stopService()
    assert listener.heard == [("load",)] * 3


@pytest.mark.parametrize(("text", "network"), [
    ("203.0.113.7", "203.0.113.7/32"), ("203.0.113.7/24", "203.0.113.0/24"),
    (" 2001:DB8::1 ", "2001:db8::1/128"), ("::ffff:10.1.2.3/120", "10.1.2.0/24"),
])
def test_addresses_and_ranges_are_normalized(text, network):
    assert str(network_of(text)) == network


def test_an_index_matches_users_and_ranges_until_the_end():
    index = BanIndex()
    index.add(ban("u", 0, 10, user="bob"))
    index.add(ban("n4", 0, 20, network="203.0.113.0/24"))
    index.add(ban("n6", 0, 30, network="2001:db8::/32"))
    assert index.holding("bob", "198.51.100.1", 5).id == "u"
    assert index.holding("bob", "203.0.113.9", 5).id == "n4"  # the one that ends last
    assert index.holding("eve", "2001:db8:ffff::1", 5).id == "n6"
    assert index.holding("eve", "2001:db9::1", 5) is None
    assert index.holding("eve", "unix socket", 5) is None
    assert index.holding("bob", "198.51.100.1", 10) is None
    assert "u" not in index.by_id  # what ended is forgotten when met


def test_a_load_keeps_what_changed_while_it_was_under_way():
    """
    A ban set and another lifted while a load waits for the store survive
    it as they are now, though the store's answer predates them; the load
    closes the connections its bans bar.
    """
    from twisted.internet.task import Clock

    hub = make_hub(Clock())
    waiting = Deferred()
    hub.backend.bans.all = lambda now: waiting
    bans = Bans(hub, hub.backend.bans)
    now = time.time()
    (mallory,) = [Recorder("mallory")]
    hub.connected(mallory, "home")
    bans.load()
    fresh, gone = ban("fresh", now, 600, user="bob"), ban("gone", now, 600, user="eve")
    bans.set(fresh)
    bans.lifted("gone")
    waiting.callback([gone, ban("old", now, 600, user="mallory")])
    assert sorted(bans.index.by_id) == ["fresh", "old"]
    assert mallory.closed == "banned"


@pytest.mark.parametrize(("given", "error"), [
    ({}, "one of them"), ({"user": "bob", "address": "10.0.0.1"}, "one of them"),
    ({"address": "10.0.0.300"}, "CIDR"), ({"user": "bob", "seconds": 0}, "whole number"),
    ({"user": "bob", "reason": "x" * 501}, "500 characters"),
])
@pytest_twisted.ensureDeferred
async def test_bad_bans_are_invalid(given, error):
    from twisted.internet.task import Clock

    hub = make_hub(Clock(), MemoryBackend(Clock(), 3600, 100))
    with pytest.raises(Invalid, match=error):
        await hub.bans.ban(**{"seconds": 60, **given})
