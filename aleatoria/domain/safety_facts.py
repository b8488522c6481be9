"""
What happened of keeping strangers safe -- blocks, reports, bans -- as
facts (L{aleatoria.domain.events.Fact}) for the observers: log lines,
breadcrumbs, counters, webhooks.
"""

from aleatoria.domain.events import Fact


class Blocked(Fact, frozen=True):
    """C{user} blocked C{other}; C{ended}: their call with it."""

    user: str
    other: str
    ended: bool = False


class Unblocked(Fact, frozen=True):
    """C{user} unblocked C{other}; C{had}: it blocked it."""

    user: str
    other: str
    had: bool = True


class Banned(Fact, frozen=True):
    """The server API set a ban (L{Ban}) through this daemon, for C{seconds}."""

    ban_id: str
    user: str
    network: str
    seconds: int
    reason: str


class Unbanned(Fact, frozen=True):
    """The server API lifted a ban through this daemon."""

    ban_id: str
    user: str
    network: str


class KickedByBan(Fact, frozen=True):
    """C{user}'s connection here, from C{address}, was closed by a ban."""

    ban_id: str
    user: str
    address: str


class HandshakeBanned(Fact, frozen=True):
    """A handshake of C{user} from C{address} was refused: banned C{seconds} more."""

    ban_id: str
    user: str
    address: str
    seconds: int


class Reported(Fact, frozen=True):
    """
    C{user} reported C{other}, for C{reason}: the report C{report_id}, all
    of it in C{report} (a L{aleatoria.domain.reports.Report}).
    """

    user: str
    other: str
    reason: str
    report_id: str
    report: object = None
