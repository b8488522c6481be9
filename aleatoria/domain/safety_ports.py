"""
The seams of keeping strangers safe, beside L{aleatoria.domain.ports}:
blocks (L{IBlocks}), reports (L{IReports}) and bans (L{IBans}), each with
a memory and a Redis implementation held to one contract suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from zope.interface import Interface

if TYPE_CHECKING:
    from aleatoria.domain.bans import Bans
    from aleatoria.domain.events import Ban
    from aleatoria.domain.reports import Report
    from aleatoria.domain.values import Blocking


class IBlocks(Interface):
    """
    Who blocked whom (L{aleatoria.domain.safety}): kept until undone. The
    pairing of L{IMatchmaking} and the direct messages of L{IStreams}
    honour them in their own atomic steps.
    """

    def block(user: str, other: str, most: int | None = None) -> Deferred[Blocking]:
        """
        C{user} blocks C{other}, unless it blocks C{most} users already
        (C{None}: no limit); their match, if they are matched, ends in the
        same step. Fire with a L{aleatoria.domain.values.Blocking}.
        """

    def unblock(user: str, other: str) -> Deferred[bool]:
        """C{user} no longer blocks C{other}; fire with whether it did."""

    def blocked(user: str) -> Deferred[list[str]]:
        """The users C{user} blocks, sorted."""

    def between(user_a: str, user_b: str) -> Deferred[bool]:
        """Whether either of the two blocks the other."""


class IReports(Interface):
    """The reports users file (L{aleatoria.domain.reports}), each kept for its time."""

    def count_in(user: str, per_hour: int) -> Deferred[float]:
        """
        C{user} would file one more report: fire with 0 and count it if it
        filed fewer than C{per_hour} this hour, else with the seconds until
        it may again.
        """

    def file(report: Report, ttl: int) -> Deferred[None]:
        """Keep a L{aleatoria.domain.reports.Report} for C{ttl} seconds."""

    def get(report_id: str) -> Deferred[Report | None]:
        """The report of that id, or C{None}."""

    def page(limit: int, after: str = "") -> Deferred[list[Report]]:
        """Up to C{limit} reports, the newest first, those after the id C{after}."""

    def delete(report_id: str) -> Deferred[bool]:
        """Forget a report; fire with whether it was kept."""


class IBans(Interface):
    """
    The bans in force (L{aleatoria.domain.events.Ban}), kept until they
    end, and each daemon's listener told of those set or lifted elsewhere.
    """

    def add(ban: Ban) -> Deferred[None]:
        """Keep C{ban} until its end, and tell the other daemons' listeners."""

    def lift(ban_id: str, now: float) -> Deferred[Ban | None]:
        """
        Forget the ban C{ban_id}, and tell the other daemons' listeners;
        fire with it, or C{None} if none was in force at C{now}.
        """

    def all(now: float) -> Deferred[list[Ban]]:
        """Fire with every ban in force at C{now} (Unix seconds)."""

    def listen(listener: Bans) -> None:
        """
        Tell C{listener} (an L{aleatoria.domain.bans.Bans}) of bans set
        (C{set(ban)}) or lifted (C{lifted(ban_id)}) on other daemons, and
        have it C{load()} whenever it may have missed some.
        """
