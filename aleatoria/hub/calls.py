"""
Calls: availability for random pairing, pairing itself (the rules are
L{aleatoria.matchmaking}'s, the atomic steps the store's), the WebRTC
signaling relay, and hanging up.
"""

from msgspec.structs import replace
from twisted.internet.defer import succeed
from twisted.logger import Logger

from ..matchmaking import POLITE, Match
from ..messages import Envelope, valid_user_id
from .outbox import named


class Calls:
    """
    @param outbox: the hub's L{aleatoria.hub.outbox.Outbox}.
    @param store: the L{aleatoria.interfaces.IStore}.
    @param metrics: the L{aleatoria.metrics.Metrics} (pairings made).
    """

    _log = Logger(namespace="aleatoria.hub.Hub")

    def __init__(self, outbox, store, metrics):
        self._out = outbox
        self._store = store
        self._metrics = metrics

    # Availability and pairing

    def available(self, conn, envelope):
        conn.report.breadcrumb("webrtc", "User marked as available")
        self._out.watch(self._store.offer(conn.user_id), "offer", conn, named=named(envelope))

    def unavailable(self, conn, envelope):
        conn.report.breadcrumb("webrtc", "User marked as unavailable")
        self._out.watch(self._store.withdraw(conn.user_id), "withdraw", conn,
                        named=named(envelope))

    def request_random_peer(self, conn, envelope):
        skipped = envelope.payload.currentPeerId
        conn.report.breadcrumb("webrtc", "Random peer requested", currentPeerId=skipped)
        d = self._store.pair(conn.user_id, skipped)
        d.addCallback(self._paired, conn, envelope.messageId)
        self._out.watch(d, "pair", conn, named=named(envelope))

    def _paired(self, pairing, conn, request_id):
        """
        Answer the request (its C{assign_role} or C{no_peer_available}
        carries the request's C{messageId}, if it had one, to tell it from
        an C{assign_role} that somebody else's pairing sends) and tell a
        fresh peer.
        """
        user, match = conn.user_id, pairing.match
        if pairing.skipped is not None:
            self.hangup_for(pairing.skipped, user, "skipped")
        if not self._out.current(conn):
            if pairing.fresh:
                self._undo_pairing(user, match.peer)
            return
        if match is None:
            self._log.info("No peer available for {user}", user=user)
            conn.report.breadcrumb("webrtc", "No peer available")
            self._out.reply(conn, "no_peer_available", {
                "message": "No peer available at the moment. Please try again later."
            }, message_id=request_id)
            return
        if pairing.fresh:
            self._log.info("Paired {user} with {peer}", user=user, peer=match.peer)
            self._metrics.pairings.inc()
            conn.report.breadcrumb("webrtc", "Peer pairing made", peer=match.peer)
            self._out.notify(match.peer, self._out.system(
                "assign_role", match.peer, _role(Match(user, POLITE))))
        self._out.reply(conn, "assign_role", _role(match), message_id=request_id)

    def _undo_pairing(self, user, peer):
        """
        The requester left while its pairing was under way: end the match
        before the peer hears of it, and put the peer back in the pool.
        """
        self._log.info("Undid pairing of departed {user} with {peer}", user=user, peer=peer)
        self._out.watch(self._store.hang_up(user, peer), "hang_up")
        self._out.watch(self._store.offer(peer), "offer")

    # Signaling

    def relay(self, conn, envelope):
        """
        Pass a signaling message on to its C{toUser}, payload untouched.
        Fire with C{True} if it reached a connected user (L{FAILED} if it
        could not be handed over).
        """
        user, target = conn.user_id, envelope.toUser
        if not target:
            conn.report.capture_message(
                "WebRTC message missing toUser field", operation="webrtc_routing",
                messageType=envelope.type,
            )
            self._out.refuse(conn, "invalid_message", f"{envelope.type} needs toUser.")
            return succeed(False)
        if target == user:
            self._out.refuse(conn, "invalid_message",
                             f"You cannot send {envelope.type} to yourself.")
            return succeed(False)
        if not valid_user_id(target):
            self._out.refuse(conn, "invalid_message", "toUser is not a user id.")
            return succeed(False)
        d = self._out.deliver(target, replace(
            envelope, fromUser=user, room="", createTime=self._out.now()
        ))
        details = named(envelope)
        d.addCallback(self._relayed, conn, target, details)
        return self._out.watch(d, "relay", conn, named=details)

    def _relayed(self, delivered, conn, target, details):
        if delivered:
            conn.report.breadcrumb("webrtc", "Signaling relayed", toUser=target)
        elif self._out.current(conn):
            self._out.refuse(conn, "user_offline", f"{target} is not online.", **details)
        return delivered

    def hangup(self, conn, envelope):
        user, peer = conn.user_id, envelope.toUser
        d = self.relay(conn, envelope)
        d.addCallback(
            lambda delivered: self._store.hang_up(user, peer) if delivered is True else False
        )
        d.addCallback(self._hung_up, user, peer)
        self._out.watch(d, "hang_up", conn, named=named(envelope))

    def _hung_up(self, ended, user, peer):
        if ended:
            self._log.info("{user} hung up on {peer}", user=user, peer=peer)

    def hangup_for(self, user, peer, reason):
        """Tell C{user}, wherever it is, that its call with C{peer} is over."""
        return self._out.notify(user, Envelope(
            type="hangup",
            fromUser=peer,
            toUser=user,
            payload={"reason": reason},
            createTime=self._out.now(),
        ))

    def forbidden(self, conn, envelope):
        self._log.info(
            "{user} refused: clients may not send {kind}",
            user=conn.user_id, kind=envelope.type,
        )
        self._out.refuse(conn, "forbidden", f"Clients may not send {envelope.type}.")


def _role(match):
    return {"role": match.role, "peerId": match.peer}
