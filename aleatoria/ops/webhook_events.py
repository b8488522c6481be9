"""
Which facts of the domain (L{aleatoria.domain.events}) the app's backend
hears of, and how: the C{type} of each webhook and its C{data}. One row
per fact. A new event type is one line of L{EVENTS}, e.g.::

    e.RoomPosted: lambda f, daemon: ("room.posted", {"room": f.room, ...}),

A call that ends for a new reason (C{blocked}, C{reported}) needs no row:
C{match.ended} says C{CallOver.reason}, which L{Calls.end
<aleatoria.domain.calls.Calls.end>} takes apart from what the user is
C{told}. The wire names (camelCase, as the protocol's) are documented in
docs/reference/webhooks.rst.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aleatoria.domain import events as e
from aleatoria.domain import safety_facts as s
from aleatoria.domain.events import Fact
from aleatoria.domain.matchmaking import IMPOLITE, POLITE
from aleatoria.ops.report_view import rendered

Webhook = tuple[str, dict[str, object]]
"""A webhook's C{type} and its C{data}."""


def _started(fact: e.Paired, daemon: str) -> Webhook:
    return "match.started", {
        "users": [{"userId": fact.user, "role": IMPOLITE},
                  {"userId": fact.peer, "role": POLITE}],
        "segment": fact.segment,
        "commonInterests": list(fact.common),
    }


def _ended(reason: str | None) -> Callable[[Any, str], Webhook]:
    """
    A call that ended: C{endedBy} is who hung up, skipped, disconnected...
    (the first of C{users}); C{duration} in seconds, C{null} when unknown.
    """
    def made(fact: e.HungUp | e.CallOver, daemon: str) -> Webhook:
        ender, other = (fact.user, fact.peer) if reason == "hangup" else (fact.peer, fact.user)
        return "match.ended", {
            "users": [ender, other], "endedBy": ender,
            # a HungUp comes with its reason: only a CallOver says its own
            "reason": reason or fact.reason,  # type: ignore[union-attr]
            "duration": fact.seconds,
        }

    return made


def _user(kind: str) -> Callable[[Any, str], Webhook]:
    def made(fact: e.Connected | e.Disconnected, daemon: str) -> Webhook:
        return kind, {"userId": fact.user, "address": fact.address, "daemon": daemon}

    return made


def _banned(fact: s.Banned, daemon: str) -> Webhook:
    """A ban the server API set through this daemon: a user's, or an address range's."""
    return "user.banned", {"banId": fact.ban_id, "userId": fact.user or None,
                           "address": fact.network or None, "seconds": fact.seconds,
                           "reason": fact.reason}


def _report_created(fact: s.Reported, daemon: str) -> Webhook:
    """A report filed on this daemon: all of it, as the server API shows it."""
    # the fact carries the Report as an object (its field is not encoded)
    return "report.created", rendered(fact.report)  # type: ignore[arg-type]


def _reaped(fact: e.Reaped, daemon: str) -> Webhook:
    """A user whose daemon died, cleaned up by this one: where it was is not known."""
    return "user.disconnected", {"userId": fact.user, "address": None, "daemon": None}


EVENTS: dict[type[Fact], Callable[[Any, str], Webhook]] = {
    e.Paired: _started,
    e.HungUp: _ended("hangup"),
    e.CallOver: _ended(None),
    e.Connected: _user("user.connected"),
    e.Disconnected: _user("user.disconnected"),
    e.Reaped: _reaped,
    s.Banned: _banned,
    s.Reported: _report_created,
}
"""Fact type -> C{(fact, daemon id) -> (webhook type, data)}."""
