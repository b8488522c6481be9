"""
What operators see of the domain, from the facts it tells
(L{aleatoria.domain.events}): the log lines, the breadcrumbs of each
user's Sentry trail, and the counters. The domain calls none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain import events as e
from aleatoria.domain import safety_facts as s
from aleatoria.domain.call_life import CallHeld, CallResumed
from aleatoria.domain.events import Fact
from aleatoria.domain.ports import IObserver
from aleatoria.domain.rules import shown
from aleatoria.ops.metrics import Metrics

if TYPE_CHECKING:
    from aleatoria.ops.reporting import Reporter

_CONNECTIONS = Logger(namespace="aleatoria.connections")
_ROOMS = Logger(namespace="aleatoria.rooms")
_CALLS = Logger(namespace="aleatoria.calls")
_ADMIN = Logger(namespace="aleatoria.admin")
_SAFETY = Logger(namespace="aleatoria.safety")


def _server_posted(fact: e.ServerPosted) -> None:
    if fact.room:
        _ADMIN.info("The server API posted to {room!r}", room=fact.room)
    else:
        _ADMIN.info("The server API wrote to {user}", user=fact.user)


_LINES: dict[type[Fact], Callable[[Any], object]] = {
    e.Connected: lambda f: _CONNECTIONS.info(
        "{user} connected from {peer}, room {room!r}; {count} online",
        user=f.user, peer=f.address, room=f.room, count=f.online),
    e.Disconnected: lambda f: _CONNECTIONS.info(
        "{user} disconnected from {peer}; {count} online",
        user=f.user, peer=f.address, count=f.online),
    e.ReplacedHere: lambda f: _CONNECTIONS.info(
        "{user} replaced by a connection to another daemon" if f.elsewhere
        else "{user} replaced by a new connection", user=f.user),
    e.Reaped: lambda f: _CONNECTIONS.info("Reaped {user}, whose daemon died", user=f.user),
    e.Joined: lambda f: None if f.quiet else _ROOMS.info(
        "{user} joined {room!r} ({count} members)", user=f.user, room=f.room,
        count=f.members),
    e.Left: lambda f: None if f.quiet else _ROOMS.info(
        "{user} left {room!r}", user=f.user, room=f.room),
    e.NoPeer: lambda f: _CALLS.info("No peer available for {user}", user=f.user),
    e.Paired: lambda f: _CALLS.info("Paired {user} with {peer}", user=f.user, peer=f.peer),
    e.PairingUndone: lambda f: _CALLS.info(
        "Undid pairing of departed {user} with {peer}", user=f.user, peer=f.peer),
    e.HungUp: lambda f: _CALLS.info("{user} hung up on {peer}", user=f.user, peer=f.peer),
    e.CallOver: lambda f: _CALLS.info(
        "Call of {peer} and {user} ended: {peer} {reason}", user=f.user, peer=f.peer,
        reason=f.reason),
    CallHeld: lambda f: _CALLS.info(
        "{user} lost its connection; its call with {peer} waits for it", user=f.user,
        peer=f.peer),
    CallResumed: lambda f: _CALLS.info(
        "{user} came back to its call with {peer}", user=f.user, peer=f.peer),
    e.KickedHere: lambda f: _ADMIN.info(
        "{user} disconnected by the server API: {reason}", user=f.user,
        reason=shown(f.reason)),
    s.Banned: lambda f: _ADMIN.info(
        "Banned {target} for {seconds} s (ban {id}), reason {reason}", target=f.user or f.network,
        seconds=f.seconds, id=f.ban_id, reason=shown(f.reason)),
    s.Unbanned: lambda f: _ADMIN.info("Lifted the ban {id} of {target}", id=f.ban_id,
                                      target=f.user or f.network),
    s.KickedByBan: lambda f: _ADMIN.info("{user} from {peer} closed by the ban {id}",
                                         user=f.user, peer=f.address, id=f.ban_id),
    e.ServerPosted: _server_posted,
    s.Blocked: lambda f: _SAFETY.info(
        "{user} blocked {other}, ending their call" if f.ended else "{user} blocked {other}",
        user=f.user, other=f.other),
    s.Unblocked: lambda f: None if not f.had else _SAFETY.info(
        "{user} unblocked {other}", user=f.user, other=f.other),
    s.Reported: lambda f: _SAFETY.info(
        "{user} reported {other} ({reason}): report {report_id}", user=f.user,
        other=f.other, reason=f.reason, report_id=f.report_id),
}


@implementer(IObserver)
class LogLines:
    """The daemon's log lines of what happened."""

    def happened(self, fact: Fact) -> None:
        line = _LINES.get(type(fact))
        if line is not None:
            line(fact)


_CRUMBS: dict[type[Fact], Callable[[Any], tuple[str, str, dict[str, Any]] | None]] = {
    e.Connected: lambda f: ("websocket", "Connected", {"room": f.room, "clients": f.online}),
    e.Disconnected: lambda f: ("websocket", "Disconnected",
                               {"rooms": f.rooms, "clients": f.online}),
    e.Joined: lambda f: ("room", "Joined room", {"room": f.room, "members": f.members}),
    e.Left: lambda f: None if f.quiet else ("room", "Left room",
                                            {"room": f.room, "members": f.members}),
    e.RoomPosted: lambda f: ("message", "Room message broadcast",
                             {"room": f.room, "members": f.members}),
    e.DirectSent: lambda f: ("message", "Direct message sent", {"toUser": f.to_user}),
    e.Availability: lambda f: ("webrtc", "User marked as available" if f.available
                               else "User marked as unavailable", {}),
    e.PeerRequested: lambda f: ("webrtc", "Random peer requested",
                                {"currentPeerId": f.skipped}),
    e.NoPeer: lambda f: ("webrtc", "No peer available", {}),
    e.Paired: lambda f: ("webrtc", "Peer pairing made", {"peer": f.peer}),
    s.Banned: lambda f: ("safety", "Ban set", {
        "banId": f.ban_id, "userId" if f.user else "address": f.user or f.network,
        "seconds": f.seconds}),
    s.Unbanned: lambda f: ("safety", "Ban lifted", {"banId": f.ban_id}),
    s.KickedByBan: lambda f: ("safety", "Closed by a ban", {"banId": f.ban_id}),
    e.SignalRelayed: lambda f: ("webrtc", "Signaling relayed", {"toUser": f.to_user}),
    s.Blocked: lambda f: ("safety", "User blocked", {"userId": f.other, "callEnded": f.ended}),
    s.Unblocked: lambda f: ("safety", "User unblocked", {"userId": f.other}),
    s.Reported: lambda f: ("safety", "User reported",
                           {"userId": f.other, "reason": f.reason, "reportId": f.report_id}),
}


@implementer(IObserver)
class Breadcrumbs:
    """
    Each user's Sentry trail: what it did, in order, for the events
    reported in its name (leaving its rooms as it disconnects is the
    disconnect's). Observes only while reporting is on.

    @param reporter: the L{aleatoria.ops.reporting.Reporter}.
    """

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def happened(self, fact: Fact) -> None:
        crumb = _CRUMBS.get(type(fact))
        made = crumb(fact) if crumb is not None else None
        if made is not None:
            category, message, data = made
            # every fact that makes a crumb is of a user
            self._reporter.report_of(fact.user).breadcrumb(  # type: ignore[attr-defined]
                category, message, **data)


_BAN_COUNTS: dict[type[Fact], Callable[[Metrics, Any], None]] = {
    s.Banned: lambda m, f: m.bans.labels("user" if f.user else "address").inc(),
    s.Unbanned: lambda m, f: m.bans_lifted.inc(),
    s.KickedByBan: lambda m, f: m.ban_closes.inc(),
    s.HandshakeBanned: lambda m, f: m.handshakes_banned.inc(),
}


@implementer(IObserver)
class BanCounters:
    """The metrics that count bans and what they bar (L{aleatoria.ops.metrics.Metrics})."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def happened(self, fact: Fact) -> None:
        count = _BAN_COUNTS.get(type(fact))
        if count is not None:
            count(self._metrics, fact)


@implementer(IObserver)
class Counters:
    """The metrics that count what happened (L{aleatoria.ops.metrics.Metrics})."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def happened(self, fact: Fact) -> None:
        kind = type(fact)
        if kind is e.Paired:
            self._metrics.pairings.inc()
        elif kind is CallHeld:
            self._metrics.calls_held.labels("held").inc()
        elif kind is CallResumed:
            self._metrics.calls_held.labels("resumed").inc()
        elif kind is s.Blocked:
            self._metrics.blocks.inc()
        elif kind is s.Reported:
            self._metrics.reports.labels(fact.reason).inc()  # type: ignore[attr-defined]  # Reported
