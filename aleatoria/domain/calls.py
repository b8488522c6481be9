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
    CallHeld,
    CallOver,
    CallResumed,
    CallStarted,
    HungUp,
    NoPeer,
    Paired,
    PairingUndone,
    PeerReconnected,
    PeerRequested,
    Signal,
    SignalRelayed,
)
from aleatoria.domain.matchmaking import POLITE
from aleatoria.domain.refusals import (
    Busy,
    Forbidden,
    Invalid,
    Offline,
    StoreUnavailable,
    Unavailable,
)
from aleatoria.domain.rules import check_user
from aleatoria.domain.work import FAILED

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
        untouched. To a user here it goes at once (C{None}); else fire
        once it reached a connected user.

        @raise Offline: C{to_user} is connected nowhere (errback).
        """
        user = conn.user_id
        _addressed(kind, user, to_user)
        hub = self._hub
        signal = Signal(kind, user, to_user, payload, message_id, self._now())
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
            return self.offline(to_user)
        self._hub.tell(SignalRelayed(user, to_user))
        return None

    def hangup(self, conn, peer, payload, message_id=""):
        """
        End the match of C{conn}'s user and C{peer}, if they are matched,
        and then relay the hangup to C{peer} -- in that order, so that a
        peer away (its call held) cannot come back to the call in between
        and miss its end. A peer unreached is no error once the match
        ended; a match that could not be ended (an outage) is, after the
        relay.
        """
        user = conn.user_id
        _addressed("hangup", user, peer)
        self._partners.pop(user, None)
        hub = self._hub
        d = hub.work.watch(hub.matchmaking.hang_up(user, peer), "hang_up", user, asked=True)
        d.addErrback(lambda failure: failure.trap(Unavailable) and failure.value)
        return d.addCallback(self._hung_up, conn, peer, payload, message_id)

    def _hung_up(self, ended, conn, peer, payload, message_id):
        user = conn.user_id
        if ended is True:
            self._matches.pop(user, None)
            self._hub.tell(HungUp(user, peer))
        relayed = self.relay(conn, "hangup", peer, payload, message_id)
        d = relayed if relayed is not None else succeed(None)
        if ended is True:
            d.addErrback(lambda failure: failure.trap(Offline) and None)
        elif isinstance(ended, Unavailable):
            d.addCallback(_raise, ended)
        return d

    def end(self, user, peer, reason):
        """Tell C{user}, wherever it is, that its call with C{peer} is over."""
        hub = self._hub
        hub.tell(CallOver(user, peer, reason))
        return hub.notify(user, CallEnded(user, peer, reason, self._now()))

    def partner(self, user):
        """Whom C{user}, here, is in a call with, as it was told; or C{None}."""
        return self._matches.get(user)

    def offline(self, user):
        """
        C{user} could not be reached: fail with L{Offline}, saying in how
        many milliseconds the grace of its held call ends, if it has one
        (C{retryAfter}).
        """
        hub = self._hub
        d = hub.work.timed(hub.matchmaking.grace_left(user), "grace_left")
        d.addErrback(lambda failure: failure.trap(StoreUnavailable) and 0)
        return d.addCallback(_offline, user)

    def released(self, former_peer, user, partner):
        """
        C{user}'s session was released: its call with C{former_peer} is
        over, or it waits for the user (with C{partner}, if held).
        """
        if former_peer is None and partner is not None:
            self._hub.tell(CallHeld(user, partner))
        if former_peer in (None, FAILED):
            return former_peer
        return self.end(former_peer, user, "disconnected")

    def resumed(self, user, match):
        """
        C{user}, here, came back within the grace of its held call: it is
        told the call again, and its partner that it is back.
        """
        hub, now = self._hub, self._now()
        hub.tell(CallResumed(user, match.peer))
        hub.arrived(user, CallStarted(user, match.peer, match.role, now, resumed=True))
        hub.notify(match.peer, PeerReconnected(match.peer, user, now))

    # News of calls, for users here

    def started(self, push):
        """
        C{push.user}, here, is told its call with C{push.peer} started.

        Daemons publish the start and the end of a match after the script
        that made it, so news of a new match can overtake the end of the
        last one (its partner disconnected or skipped it on another daemon,
        which put it back in the pool). The user hears that end first,
        with reason C{"ended"}: return it, to be sent before the start;
        the late news is dropped (L{ended}).
        """
        user = push.user
        former = self._matches.get(user)
        self._partners.pop(user, None)
        self._matches[user] = push.peer
        if former is None or former == push.peer:
            return None
        return CallEnded(user, former, "ended", push.create_time)

    def ended(self, push):
        """
        C{push.user}, here, is told its call with C{push.peer} is over:
        whether that is news, not the late end of a call it left already.
        """
        current = self._matches.get(push.user)
        if current is not None and current != push.peer:
            return False
        self.forget(push.user)
        return True

    def forget(self, user):
        """C{user} is gone from here, or its call ended: whom it is matched with is news."""
        self._partners.pop(user, None)
        self._matches.pop(user, None)

    def _now(self):
        return format_ns(self._hub.clock.next_ns())


def _addressed(kind, user, to_user):
    """
    @raise Invalid: signaling of C{kind} from C{user} cannot go to C{to_user}.
    """
    if not to_user:
        raise Invalid(f"{SIGNALS[kind]} needs toUser.", fault="webrtc_routing")
    if to_user == user:
        raise Invalid(f"You cannot signal yourself ({kind}).")
    check_user(to_user)


def _raise(_, error):
    raise error


def _offline(left_ms, user):
    details = {"retryAfter": left_ms} if left_ms else {}
    raise Offline(f"{user} is not online.", **details)


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
