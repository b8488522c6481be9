"""
Calls: availability for random pairing, pairing itself (the rules are
L{aleatoria.domain.matchmaking}'s, the atomic steps the matchmaking
seam's), the WebRTC signaling relay, and the end of calls.

Every start and end of a match reaches both of its users as a
L{CallStarted}, a L{CallEnded} or a relayed hangup -- on this daemon or
through the bus -- and passes through L{Calls.started} or L{Calls.forget}
on its way: so this daemon knows whom each of its users is matched with
without asking the backend, and a partner it looked up goes stale only
with such news.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from msgspec import Raw
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from aleatoria.domain.call_life import CallLife, addressed
from aleatoria.domain.clock import format_ns
from aleatoria.domain.events import (
    Availability,
    CallEnded,
    CallOver,
    CallStarted,
    NoPeer,
    Paired,
    PairingUndone,
    PeerRequested,
    Signal,
    SignalRelayed,
)
from aleatoria.domain.matchmaking import ENDED, POLITE, Match, Pairing, PairingRules, within_limit
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import (
    Busy,
    Forbidden,
    StoreUnavailable,
)
from aleatoria.domain.safety import signal_refused
from aleatoria.domain.turns import Turns

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub


class Calls(CallLife):
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param signaling: C{"any"}: signaling passes between any two users, but
        for a user in a call only from its partner; C{"matched"}: only
        between the two users of a match.
    @param pairing: the L{PairingRules} requests are held to.
    """

    def __init__(self, hub: Hub, signaling: str = "any",
                 pairing: PairingRules | None = None) -> None:
        self._hub, self._signaling, self._pairing = hub, signaling, pairing or PairingRules()
        self._partners: dict[str, str] = {}
        """Each user here whose signaling was let through to its partner: that partner."""
        self._matches: dict[str, Match] = {}
        """Each user here in a call: its L{Match}, as the user was told."""
        self._since: dict[str, int] = {}
        """Each user here in a call: when the call started (ns), as this daemon saw it."""
        self.turns = Turns()

    def in_turn(self, conn: IConnection, step: Callable[..., object],
                *args: object) -> Deferred[Any]:
        """
        C{step(conn, *args)} -- L{available}, L{unavailable},
        L{request_peer}, L{hangup} -- once the steps C{conn}'s user asked
        for before are done (L{aleatoria.domain.turns}).
        """
        return self.turns.run(conn.user_id, step, conn, *args)

    # Availability and pairing

    def available(self, conn: IConnection, interests: Sequence[str] = ()) -> Deferred[None]:
        hub, seat = self._hub, self._pairing.seat(conn, interests)
        hub.tell(Availability(conn.user_id, True))
        return hub.work.watch(hub.matchmaking.offer(conn.user_id, seat), "offer", conn.user_id,
                              asked=True)

    def unavailable(self, conn: IConnection) -> Deferred[None]:
        hub = self._hub
        hub.tell(Availability(conn.user_id, False))
        return hub.work.watch(hub.matchmaking.withdraw(conn.user_id), "withdraw",
                              conn.user_id, asked=True)

    def request_peer(self, conn: IConnection, skipped: str, interests: Sequence[str] = (),
                     only: bool = False) -> Deferred[Match | None]:
        """
        Pair C{conn}'s user with a random available one other than
        C{skipped}, and tell that peer; fire with the requester's
        L{aleatoria.domain.matchmaking.Match}, or C{None} when nobody fits.
        """
        hub, ask = self._hub, self._pairing.ask(conn, interests, only)
        hub.tell(PeerRequested(conn.user_id, skipped))
        d = hub.matchmaking.pair(conn.user_id, skipped, ask)
        d.addCallback(within_limit).addCallback(self._paired, conn)
        return hub.work.watch(d, "pair", conn.user_id, asked=True)

    def _paired(self, pairing: Pairing, conn: IConnection) -> Match | None:
        """
        End a skipped call, and tell a fresh peer -- unless the requester
        has gone meanwhile.
        """
        hub, user, match = self._hub, conn.user_id, pairing.match
        if pairing.skipped is not None:
            self.end(pairing.skipped, user, "skipped", self._since.pop(user, None))
        if not hub.connections.current(conn):
            if pairing.fresh:
                self._undo_pairing(user, match.peer)  # type: ignore[union-attr]  # fresh: a match
            return None
        if match is None:
            hub.tell(NoPeer(user))
            return None
        self._partners.pop(user, None)
        former = self.partner(user)
        if former not in (None, match.peer, pairing.skipped):
            hub.delivery.send(user, CallEnded(user, former, ENDED, self._now()))
        self._matches[user] = match
        if pairing.fresh:
            self._since[user] = hub.clock.next_ns()
            hub.tell(Paired(user, match.peer, conn.segment, match.common))
            hub.notify(match.peer, CallStarted(match.peer, user, POLITE, self._now(), match.common))
        return match

    def _undo_pairing(self, user: str, peer: str) -> None:
        """
        The requester left while its pairing was under way: end the match
        before the peer hears of it, and put the peer back in the pool.
        """
        hub = self._hub
        hub.tell(PairingUndone(user, peer))
        hub.work.watch(hub.matchmaking.hang_up(user, peer), "hang_up")
        hub.work.watch(hub.matchmaking.offer(peer), "offer")

    # Signaling

    def relay(self, conn: IConnection, kind: str, to_user: str, payload: Raw,
              message_id: str = "") -> Deferred[None] | None:
        """
        Pass a signaling message of C{kind} on to C{to_user}, C{payload}
        untouched. To its partner here it goes at once (C{None}); else
        fire once it reached a connected user. Between two users who are
        not partners, the store is asked first whether either blocks the
        other.

        @raise Offline: C{to_user} is connected nowhere (errback).
        @raise Forbidden: either of the two blocks the other (errback).
        """
        user = conn.user_id
        addressed(kind, user, to_user)
        hub = self._hub
        signal = Signal(kind, user, to_user, payload, message_id, self._now())
        if self.partner(user) == to_user:  # no block between partners
            return self._relay(user, kind, to_user, signal)
        d = hub.work.timed(hub.blocks.between(user, to_user), "blocks_between")
        d.addErrback(_unknown_in_an_outage)
        d.addCallback(self._unless_blocked, user, kind, to_user, signal)
        return hub.work.watch(d, "relay", user, asked=True, timed=False)

    def _unless_blocked(self, blocked: object, user: str, kind: str, to_user: str,
                        signal: Signal) -> Deferred[None] | None:
        if blocked is True:
            raise signal_refused(to_user)
        return self._relay(user, kind, to_user, signal)

    def _relay(self, user: str, kind: str, to_user: str, signal: Signal) -> Deferred[None] | None:
        hub = self._hub
        if to_user in hub.connections:  # known here: no Deferred at all
            self._may_signal(_partner(self._matches.get(to_user)), user, kind, to_user)
            hub.arrived(to_user, signal)
            hub.tell(SignalRelayed(user, to_user))
            return None
        if self._partners.get(user) == to_user:
            d: Deferred[Any] = succeed(user)  # chained in place: each step changes its result
        else:
            d = hub.work.timed(hub.matchmaking.match_of(to_user), "match_of")
            d.addCallbacks(_partner, _unknown_in_an_outage)
        d.addCallback(self._may_signal, user, kind, to_user)
        d.addCallback(lambda _: hub.work.timed(hub.bus.deliver(to_user, signal), "deliver"))
        d.addCallback(self._relayed, user, to_user)
        return hub.work.watch(d, "relay", user, asked=True, timed=False)

    def _may_signal(self, partner: object, user: str, kind: str, to_user: str) -> None:
        """
        A user in a call hears signaling only from its C{partner} (C{None}:
        it is in none); with C{signaling="matched"}, offers, answers and
        candidates pass only between the two users of a match the server
        made.

        @raise Busy: C{to_user} is in a call with somebody else.
        @raise Forbidden: the two are not matched, and must be.
        """
        if partner is UNKNOWN:
            return
        if partner is not None and partner != user:
            raise Busy(f"{to_user} is in a call.")
        if self._signaling == "matched" and kind != "hangup" and partner is None:
            raise Forbidden(f"You may signal ({kind}) only the partner you were paired with.")
        if partner is not None and kind != "hangup":
            self._partners[user] = to_user

    def _relayed(self, delivered: bool, user: str, to_user: str) -> Deferred[NoReturn] | None:
        if not delivered:
            return self.offline(to_user)
        self._hub.tell(SignalRelayed(user, to_user))
        return None

    def end(self, user: str, peer: str, reason: str, started: int | None = None,
            told: str | None = None) -> Deferred[object]:
        """
        Tell C{user}, wherever it is, that its call with C{peer} is over
        for C{reason} -- or that it is over for C{told}, when C{user} is
        not to hear why (a blocked user hears only that it ended). It
        C{started} then (ns), if the caller knows; else if C{user} is
        here, this daemon does.
        """
        hub = self._hub
        if started is None:
            started = self._since.get(user)
        hub.tell(CallOver(user, peer, reason, self._lasted(started)))
        return hub.notify(user, CallEnded(user, peer, told or reason, self._now()))

    def partner(self, user: str) -> str | None:
        """Whom C{user}, here, is in a call with, as it was told; or C{None}."""
        return _partner(self._matches.get(user))

    # News of calls, for users here

    def started(self, push: CallStarted) -> CallEnded | None:
        """
        C{push.user}, here, is told its call with C{push.peer} started.

        Daemons publish the start and the end of a match after the script
        that made it, and a daemon reads its own replies and what the bus
        brings on separate links: so news of a new match -- this one, or a
        request's answer (L{_paired}) -- can overtake the end of the last
        one (its partner hung up, skipped it or disconnected on another
        daemon). The user hears that end first, with reason C{"ended"}:
        return it, to be sent before the start; the late news is dropped
        (L{ended <aleatoria.domain.call_life.CallLife.ended>},
        L{hung_up_by <aleatoria.domain.call_life.CallLife.hung_up_by>}).
        """
        user = push.user
        former = self.partner(user)
        self._partners.pop(user, None)
        self._matches[user] = Match(push.peer, push.role)
        if former == push.peer:
            return None
        self._since[user] = self._hub.clock.next_ns()
        if former is None:
            return None
        return CallEnded(user, former, ENDED, push.create_time)

    def here(self) -> dict[str, list[str]]:
        """
        Each user here in a call: C{[partner, role]}, as it was told -- for
        a store that may have lost the match in a failover.
        """
        return {user: [match.peer, match.role] for user, match in self._matches.items()}

    def forget(self, user: str) -> int | None:
        """
        C{user} is gone from here, or its call ended: whom it is matched with
        is news. When its call started (ns), or C{None}.
        """
        self._partners.pop(user, None)
        self._matches.pop(user, None)
        return self._since.pop(user, None)

    def _lasted(self, started: int | None) -> float | None:
        """Seconds since C{started} (ns), to the millisecond; C{None} if unknown."""
        if started is None:
            return None
        return round((self._hub.clock.next_ns() - started) / 1e9, 3)

    def _now(self) -> str:
        return format_ns(self._hub.clock.next_ns())


UNKNOWN = object()
"""Whom a user is matched with, while the backend cannot tell."""


def _partner(match: Match | None) -> str | None:
    return match.peer if match is not None else None


def _unknown_in_an_outage(failure: Failure) -> object:
    """
    Signaling is live traffic: during an outage it passes unchecked, so
    that calls under way go on (their candidates and hangups must).
    """
    failure.trap(StoreUnavailable)
    return UNKNOWN
