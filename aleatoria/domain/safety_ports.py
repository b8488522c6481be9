"""
The seams of keeping strangers safe, beside L{aleatoria.domain.ports}:
blocks (L{IBlocks}), reports (L{IReports}) and bans (L{IBans}), each with
a memory and a Redis implementation held to one contract suite.
"""

from zope.interface import Interface


class IBlocks(Interface):
    """
    Who blocked whom (L{aleatoria.domain.safety}): kept until undone. The
    pairing of L{IMatchmaking} and the direct messages of L{IStreams}
    honour them in their own atomic steps.
    """

    def block(user, other, most=None):
        """
        C{user} blocks C{other}, unless it blocks C{most} users already
        (C{None}: no limit); their match, if they are matched, ends in the
        same step. Fire with a L{aleatoria.domain.values.Blocking}.
        """

    def unblock(user, other):
        """C{user} no longer blocks C{other}; fire with whether it did."""

    def blocked(user):
        """The users C{user} blocks, sorted."""

    def between(user_a, user_b):
        """Whether either of the two blocks the other."""


class IReports(Interface):
    """The reports users file (L{aleatoria.domain.reports}), each kept for its time."""

    def count_in(user, per_hour):
        """
        C{user} would file one more report: fire with 0 and count it if it
        filed fewer than C{per_hour} this hour, else with the seconds until
        it may again.
        """

    def file(report, ttl):
        """Keep a L{aleatoria.domain.reports.Report} for C{ttl} seconds."""

    def get(report_id):
        """The report of that id, or C{None}."""

    def page(limit, after=""):
        """Up to C{limit} reports, the newest first, those after the id C{after}."""

    def delete(report_id):
        """Forget a report; fire with whether it was kept."""


class IBans(Interface):
    """
    The bans in force (L{aleatoria.domain.events.Ban}), kept until they
    end, and each daemon's listener told of those set or lifted elsewhere.
    """

    def add(ban):
        """Keep C{ban} until its end, and tell the other daemons' listeners."""

    def lift(ban_id, now):
        """
        Forget the ban C{ban_id}, and tell the other daemons' listeners;
        fire with it, or C{None} if none was in force at C{now}.
        """

    def all(now):
        """Fire with every ban in force at C{now} (Unix seconds)."""

    def listen(listener):
        """
        Tell C{listener} (an L{aleatoria.domain.bans.Bans}) of bans set
        (C{set(ban)}) or lifted (C{lifted(ban_id)}) on other daemons, and
        have it C{load()} whenever it may have missed some.
        """
