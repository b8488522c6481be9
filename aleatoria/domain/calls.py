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

from twisted.internet.defer import succeed

from aleatoria.domain.clock import format_ns
from aleatoria.domain.events import (
    Availability,
    CallEnded,
    CallOver,
    CallStarted,
    HungUp,
    NoPeer,
    Paired,
    PairingUndone,
    PeerRequested,
    Signal,
    SignalRelayed,
)
from aleatoria.domain.matchmaking import POLITE
from aleatoria.domain.refusals import Busy, Forbidden, Invalid, Offline, StoreUnavailable
from aleatoria.domain.rules import check_user
from aleatoria.domain.safety import signal_refused

SIGNALS = {"offer": "An offer", "answer": "An answer", "candidate": "A candidate",
           "hangup": "A hangup"}
"""The kinds of signaling the relay passes on, as a sentence names them."""


class Calls:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param signaling: C{"any"}: signaling passes between any two users, but
        for a user in a call only from its partner; C{"matched"}: only
        between the two users of a match.
    """

    def __init__(self, hub, signaling="any"):
        self._hub = hub
        self._signaling = signaling
        self._partners = {}
        """Each user here whose signaling was let through to its partner: that partner."""
        self._matches = {}
        """Each user here in a call: its partner, as the user was told."""

    # Availability and pairing

    def available(self, conn):
        hub = self._hub
        hub.tell(Availability(conn.user_id, True))
        return hub.work.watch(hub.matchmaking.offer(conn.user_id), "offer", conn.user_id,
                              asked=True)

    def unavailable(self, conn):
        hub = self._hub
        hub.tell(Availability(conn.user_id, False))
        return hub.work.watch(hub.matchmaking.withdraw(conn.user_id), "withdraw",
                              conn.user_id, asked=True)

    def request_peer(self, conn, skipped):
        """
        Pair C{conn}'s user with a random available one other than
        C{skipped}, and tell that peer; fire with the requester's
        L{aleatoria.domain.matchmaking.Match}, or C{None} when nobody fits.
        """
        hub = self._hub
        hub.tell(PeerRequested(conn.user_id, skipped))
        d = hub.matchmaking.pair(conn.user_id, skipped)
        d.addCallback(self._paired, conn)
        return hub.work.watch(d, "pair", conn.user_id, asked=True)

    def _paired(self, pairing, conn):
        """
        End a skipped call, and tell a fresh peer -- unless the requester
        has gone meanwhile.
        """
        hub, user, match = self._hub, conn.user_id, pairing.match
        if pairing.skipped is not None:
            self.end(pairing.skipped, user, "skipped")
        if not hub.connections.current(conn):
            if pairing.fresh:
                self._undo_pairing(user, match.peer)
            return None
        if match is None:
            hub.tell(NoPeer(user))
            return None
        self._partners.pop(user, None)
        self._matches[user] = match.peer
        if pairing.fresh:
            hub.tell(Paired(user, match.peer))
            hub.notify(match.peer, CallStarted(match.peer, user, POLITE, self._now()))
        return match

    def _undo_pairing(self, user, peer):
        """
        The requester left while its pairing was under way: end the match
        before the peer hears of it, and put the peer back in the pool.
        """
        hub = self._hub
        hub.tell(PairingUndone(user, peer))
        hub.work.watch(hub.matchmaking.hang_up(user, peer), "hang_up")
        hub.work.watch(hub.matchmaking.offer(peer), "offer")

    # Signaling

    def relay(self, conn, kind, to_user, payload, message_id=""):
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
        if not to_user:
            raise Invalid(f"{SIGNALS[kind]} needs toUser.", fault="webrtc_routing")
        if to_user == user:
            raise Invalid(f"You cannot signal yourself ({kind}).")
        check_user(to_user)
        hub = self._hub
        signal = Signal(kind, user, to_user, payload, message_id, self._now())
        if self._matches.get(user) == to_user:  # no block between partners
            return self._relay(user, kind, to_user, signal)
        d = hub.work.timed(hub.blocks.between(user, to_user), "blocks_between")
        d.addErrback(_unknown_in_an_outage)
        d.addCallback(self._unless_blocked, user, kind, to_user, signal)
        return hub.work.watch(d, "relay", user, asked=True, timed=False)

    def _unless_blocked(self, blocked, user, kind, to_user, signal):
        if blocked is True:
            raise signal_refused(to_user)
        return self._relay(user, kind, to_user, signal)

    def _relay(self, user, kind, to_user, signal):
        hub = self._hub
        if to_user in hub.connections:  # known here: no Deferred at all
            self._may_signal(self._matches.get(to_user), user, kind, to_user)
            hub.arrived(to_user, signal)
            hub.tell(SignalRelayed(user, to_user))
            return None
        if self._partners.get(user) == to_user:
            d = succeed(user)
        else:
            d = hub.work.timed(hub.matchmaking.match_of(to_user), "match_of")
            d.addCallbacks(_partner, _unknown_in_an_outage)
        d.addCallback(self._may_signal, user, kind, to_user)
        d.addCallback(lambda _: hub.work.timed(hub.bus.deliver(to_user, signal), "deliver"))
        d.addCallback(self._relayed, user, to_user)
        return hub.work.watch(d, "relay", user, asked=True, timed=False)

    def _may_signal(self, partner, user, kind, to_user):
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

    def _relayed(self, delivered, user, to_user):
        if not delivered:
            raise Offline(f"{to_user} is not online.")
        self._hub.tell(SignalRelayed(user, to_user))

    def hangup(self, conn, peer, payload, message_id=""):
        """Relay a hangup to C{peer}, and end their match if they are matched."""
        hub, user = self._hub, conn.user_id
        self._partners.pop(user, None)
        relayed = self.relay(conn, "hangup", peer, payload, message_id)
        d = relayed if relayed is not None else succeed(None)
        d.addCallback(lambda _: hub.work.watch(
            hub.matchmaking.hang_up(user, peer), "hang_up", user, asked=True))
        return d.addCallback(self._hung_up, user, peer)

    def _hung_up(self, ended, user, peer):
        if ended:
            self._matches.pop(user, None)
            self._hub.tell(HungUp(user, peer))

    def end(self, user, peer, reason, told=None):
        """
        Tell C{user}, wherever it is, that its call with C{peer} is over:
        C{peer} did it (C{reason}: hung up, skipped, blocked...), as
        observers hear; the user is C{told} that reason, or another.
        """
        hub = self._hub
        hub.tell(CallOver(user, peer, reason))
        return hub.notify(user, CallEnded(user, peer, told or reason, self._now()))

    # News of calls, for users here

    def started(self, push):
        """C{push.user}, here, is told its call with C{push.peer} started."""
        self._partners.pop(push.user, None)
        self._matches[push.user] = push.peer

    def forget(self, user):
        """C{user} is gone from here, or its call ended: whom it is matched with is news."""
        self._partners.pop(user, None)
        self._matches.pop(user, None)

    def _now(self):
        return format_ns(self._hub.clock.next_ns())


UNKNOWN = object()
"""Whom a user is matched with, while the backend cannot tell."""


def _partner(match):
    return match.peer if match is not None else None


def _unknown_in_an_outage(failure):
    """
    Signaling is live traffic: during an outage it passes unchecked, so
    that calls under way go on (their candidates and hangups must).
    """
    failure.trap(StoreUnavailable)
    return UNKNOWN
