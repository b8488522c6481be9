"""
The reports seam (L{aleatoria.domain.safety_ports.IReports}), and what the other
seams keep for a report's evidence -- a user's last client address, its
current or most recent match -- held to one contract on every backend.
"""

import time

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from aleatoria.domain.clock import format_ns
from aleatoria.domain.reports import Message, Report, place_of
from aleatoria.domain.safety_ports import IReports

from .test_contract_matchmaking import offer

NOW = [time.time_ns()]


@pytest.fixture(autouse=True)
def now():
    """Each test files its reports as of its own start (reports expire by their time)."""
    NOW[0] = time.time_ns()


def filed(n):
    """Report C{n}, filed C{n} nanoseconds after the test began."""
    return Report(id=f"{n:032x}", created_at=format_ns(NOW[0] + n), reporter="alice",
                  reported=f"u{n}", reason="spam", details="é", reporter_address="::1",
                  reported_address=None, paired_at=None, paired_seconds=None,
                  shared_interests=[], messages=[Message("a", "b", "hi", "m1", "t")])


def test_provides_the_interface(backend):
    assert verifyObject(IReports, backend.reports)


@pytest_twisted.ensureDeferred
async def test_file_get_page_delete(backend):
    """Kept whole; pages newest first, each after the last one's place; deleted once."""
    reports = backend.reports
    for n in (1, 2, 3):
        await reports.file(filed(n), 3600)
    assert await reports.get(filed(2).id) == filed(2)
    assert await reports.get("f" * 32) is None
    assert await reports.page(2) == [filed(3), filed(2)]
    assert await reports.page(2, place_of(filed(2))) == [filed(1)]
    assert await reports.delete(filed(2).id) is True
    assert await reports.delete(filed(2).id) is False
    assert await reports.page(10) == [filed(3), filed(1)]
    assert await reports.page(10, place_of(filed(2))) == [filed(1)]


@pytest_twisted.ensureDeferred
async def test_count_in_per_hour(backend):
    """Up to C{per_hour} are counted; then the seconds left of the hour; per user."""
    reports = backend.reports
    assert [await reports.count_in("alice", 2) for _ in range(2)] == [0, 0]
    wait = await reports.count_in("alice", 2)
    assert 3590 < wait <= 3600
    assert await reports.count_in("bob", 2) == 0


@pytest_twisted.ensureDeferred
async def test_an_expired_report_is_gone(backend):
    """Past its time a report is neither read nor listed."""
    reports = backend.reports
    await reports.file(filed(1), 3600)
    await reports.file(filed(2), 10)
    if backend.kind == "memory":
        backend.reports._seconds.__self__.advance(11)
    else:
        await backend.commands.call("delete", backend.keys("report", filed(2).id))
    assert await reports.get(filed(2).id) is None
    assert await reports.page(10) == [filed(1)]


@pytest_twisted.ensureDeferred
async def test_the_address_is_kept(backend):
    """The address a user connected from, while connected and after."""
    sessions = backend.sessions
    await sessions.claim("alice", "203.0.113.5")
    assert await sessions.address_of("alice") == "203.0.113.5"
    await sessions.release("alice")
    assert await sessions.address_of("alice") == "203.0.113.5"
    await sessions.claim("alice", "2001:db8::1")
    assert await sessions.address_of("alice") == "2001:db8::1"
    assert await sessions.address_of("bob") is None


@pytest_twisted.ensureDeferred
async def test_the_last_match_is_remembered(backend):
    """The current match (no end yet), then -- once over -- when it began and ended."""
    matchmaking = backend.matchmaking
    assert await matchmaking.last_match("alice") is None
    await offer(backend, "bob")
    await backend.sessions.claim("alice")
    await matchmaking.pair("alice", "")
    current = await matchmaking.last_match("alice")
    assert current.peer == "bob" and current.ended is None
    assert (await matchmaking.last_match("bob")).started == current.started
    await matchmaking.hang_up("bob", "alice")
    for user, peer in (("alice", "bob"), ("bob", "alice")):
        over = await matchmaking.last_match(user)
        assert (over.peer, over.started) == (peer, current.started)
        assert over.ended >= over.started
