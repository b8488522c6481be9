"""
Calls: availability for random pairing, pairing itself (the rules are
L{aleatoria.matchmaking}'s, the atomic steps the store's), the WebRTC
signaling relay, and hanging up.
"""

from twisted.internet.defer import succeed
from twisted.logger import Logger

from aleatoria.domain.matchmaking import POLITE, Match
from aleatoria.domain.ports import Busy, Forbidden, Invalid, Offline, StoreUnavailable
from aleatoria.edge.wire import USER_ID_RULE, Envelope, shown, valid_user_id


class Calls:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    @param metrics: the L{aleatoria.metrics.Metrics} (pairings made).
    @param signaling: C{"any"}: signaling passes between any two users, but
        for a user in a call only from its partner; C{"matched"}: only
        between the two users of a match.
    """

    _log = Logger(namespace="aleatoria.domain.hub.Hub")

    def __init__(self, outbox, store, metrics, signaling="any"):
        self._out = outbox
        self._store = store
        self._metrics = metrics
        self._signaling = signaling
        self._partners = {}
        """Each user here whose signaling was let through to its partner: that partner."""
        self._matches = {}
        """Each user here in a call: its partner, as the user was told."""
        outbox.watch_calls(self._call_event)

    # Availability and pairing

    def available(self, conn):
        conn.report.breadcrumb("webrtc", "User marked as available")
        return self._out.watch(self._store.offer(conn.user_id), "offer", conn, asked=True)

    def unavailable(self, conn):
        conn.report.breadcrumb("webrtc", "User marked as unavailable")
        return self._out.watch(self._store.withdraw(conn.user_id), "withdraw", conn,
                               asked=True)

    def request_peer(self, conn, skipped):
        """
        Pair C{conn}'s user with a random available one other than
        C{skipped}, and tell that peer; fire with the requester's
        L{aleatoria.matchmaking.Match}, or C{None} when nobody fits.
        """
        conn.report.breadcrumb("webrtc", "Random peer requested", currentPeerId=skipped)
        d = self._store.pair(conn.user_id, skipped)
        d.addCallback(self._paired, conn)
        return self._out.watch(d, "pair", conn, asked=True)

    def _paired(self, pairing, conn):
        """
        End a skipped call, and tell a fresh peer -- unless the requester
        has gone meanwhile.
        """
        user, match = conn.user_id, pairing.match
        if pairing.skipped is not None:
            self.hangup_for(pairing.skipped, user, "skipped")
        if not self._out.current(conn):
            if pairing.fresh:
                self._undo_pairing(user, match.peer)
            return None
        if match is None:
            self._log.info("No peer available for {user}", user=user)
            conn.report.breadcrumb("webrtc", "No peer available")
        elif pairing.fresh:
            self._log.info("Paired {user} with {peer}", user=user, peer=match.peer)
            self._metrics.pairings.inc()
            conn.report.breadcrumb("webrtc", "Peer pairing made", peer=match.peer)
            self._out.notify(match.peer, self._out.system(
                "assign_role", match.peer, role(Match(user, POLITE))))
        return match

    def _undo_pairing(self, user, peer):
        """
        The requester left while its pairing was under way: end the match
        before the peer hears of it, and put the peer back in the pool.
        """
        self._log.info("Undid pairing of departed {user} with {peer}", user=user, peer=peer)
        self._out.watch(self._store.hang_up(user, peer), "hang_up")
        self._out.watch(self._store.offer(peer), "offer")

    # Signaling

    def relay(self, conn, kind, to_user, payload, message_id=""):
        """
        Pass a signaling message of C{kind} on to C{to_user}, C{payload}
        untouched. Fire when it reached a connected user.

        @raise Offline: C{to_user} is connected nowhere (errback).
        """
        user = conn.user_id
        if not to_user:
            conn.report.fault("WebRTC message missing toUser field", "webrtc_routing",
                              messageType=kind)
            raise Invalid(f"{kind} needs toUser.")
        if to_user == user:
            raise Invalid(f"You cannot send {kind} to yourself.")
        if not valid_user_id(to_user):
            raise Invalid(f"toUser {shown(to_user)} is not a user id ({USER_ID_RULE}).")
        signal = Envelope(type=kind, fromUser=user, toUser=to_user, payload=payload,
                          messageId=message_id, createTime=self._out.now())
        if to_user in self._out.connections:  # known here: no Deferred until the send
            self._may_signal(self._matches.get(to_user), user, kind, to_user)
            d = self._out.deliver(to_user, signal)
        else:
            if self._partners.get(user) == to_user:
                d = succeed(user)
            else:
                d = self._out.timed(self._store.match_of(to_user), "match_of")
                d.addCallbacks(_partner, _unknown_in_an_outage)
            d.addCallback(self._may_signal, user, kind, to_user)
            d.addCallback(lambda _: self._out.deliver(to_user, signal))
        d.addCallback(self._relayed, conn, to_user)
        return self._out.watch(d, "relay", conn, asked=True, timed=False)

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
            raise Forbidden(f"You may send {kind} only to the partner you were paired with.")
        if partner is not None and kind != "hangup":
            self._partners[user] = to_user

    def _call_event(self, user, envelope):
        """
        C{user}, connected here, is told a call of its started
        (C{assign_role}) or ended (C{hangup}). Every start and end of a
        match reaches both of its users that way, so this daemon knows the
        partner of each of its users without asking the store, and a
        partner looked up for a user here goes stale only with such news.
        """
        self._partners.pop(user, None)
        if envelope.type == "assign_role":
            self._matches[user] = envelope.payload["peerId"]
        else:
            self._matches.pop(user, None)

    def forget(self, user):
        """C{user} is gone from here, or hung up: whom it is matched with is news."""
        self._partners.pop(user, None)
        self._matches.pop(user, None)

    def _relayed(self, delivered, conn, to_user):
        if not delivered:
            raise Offline(f"{to_user} is not online.")
        conn.report.breadcrumb("webrtc", "Signaling relayed", toUser=to_user)

    def hangup(self, conn, peer, payload, message_id=""):
        """Relay a C{hangup} to C{peer}, and end their match if they are matched."""
        self._partners.pop(conn.user_id, None)
        d = self.relay(conn, "hangup", peer, payload, message_id)
        d.addCallback(lambda _: self._out.watch(
            self._store.hang_up(conn.user_id, peer), "hang_up", conn, asked=True))
        return d.addCallback(self._hung_up, conn.user_id, peer)

    def _hung_up(self, ended, user, peer):
        if ended:
            self._matches.pop(user, None)
            self._log.info("{user} hung up on {peer}", user=user, peer=peer)

    def hangup_for(self, user, peer, reason):
        """Tell C{user}, wherever it is, that its call with C{peer} is over."""
        self._log.info("Call of {peer} and {user} ended: {peer} {reason}",
                       user=user, peer=peer, reason=reason)
        return self._out.notify(user, Envelope(
            type="hangup",
            fromUser=peer,
            toUser=user,
            payload={"reason": reason},
            createTime=self._out.now(),
        ))


UNKNOWN = object()
"""Whom a user is matched with, while the store cannot tell."""


def _partner(match):
    return match.peer if match is not None else None


def _unknown_in_an_outage(failure):
    """
    Signaling is live traffic: during a store outage it passes unchecked,
    so that calls under way go on (their candidates and hangups must).
    """
    failure.trap(StoreUnavailable)
    return UNKNOWN


def role(match):
    """The payload of C{assign_role} for C{match}."""
    return {"role": match.role, "peerId": match.peer}
