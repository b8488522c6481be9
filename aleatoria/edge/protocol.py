"""
One client's WebSocket: the handshake checks, framing and limits.

The protocol object is thin. It admits or refuses the handshake, decodes
each frame with L{aleatoria.edge.wire} and hands the result to the
L{aleatoria.edge.router.Router}, which calls the domain; the domain's
pushes come back rendered through L{aleatoria.edge.render.Outlet}, which
writes them here. Its limits are its L{ConnectionLimits}'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria.domain.ports import IConnection
from aleatoria.domain.rules import MAX_REASON, SHOWN, shown
from aleatoria.edge import bans, frames
from aleatoria.edge.connection_limits import ConnectionLimits
from aleatoria.edge.handshake import admit, client_address, first, proxied
from aleatoria.edge.wire import InvalidMessage, decode, truncated
from aleatoria.ops.budgets import Summary

if TYPE_CHECKING:
    from autobahn.websocket.protocol import PreparedMessage
    from autobahn.websocket.types import ConnectionRequest
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime

    from aleatoria.domain.hub import Hub
    from aleatoria.edge.admission import Admission, Ticket
    from aleatoria.edge.auth import Identity, IdentityPolicy
    from aleatoria.edge.connection_limits import Budgets, Limits
    from aleatoria.edge.origins import OriginPolicy
    from aleatoria.edge.render import Outlet
    from aleatoria.edge.router import Router
    from aleatoria.ops.reporting import Report, Reporter

CLOSE_GOING_AWAY = 1001
CLOSE_REPLACED = 4001
CLOSE_KICKED = 4003
RETRY_AFTER_SECONDS = 5
SHUTTING_DOWN = f"server shutting down; retry-after={RETRY_AFTER_SECONDS}"
"""
The reason of the 1001 close at shutdown: a hint, in the manner of HTTP's
Retry-After, of when to reconnect (a restart under systemd takes about that).
"""

REFUSALS_WINDOW = 10
"""Seconds over which refused handshakes from one address are summed up in one line."""

REFUSAL_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden",
                 429: "rate_limited", 500: "unavailable"}
"""The C{code} of a refused handshake's body, by its HTTP status."""

_EXPECTED_CLOSES = frozenset({1000, 1001, 1005, 1006, None})
"""
Close codes that are no news: normal, going away, none given, and a dropped
TCP connection (a closed tab, a lost mobile network).
"""


@implementer(IConnection)
class ClientProtocol(frames.DirectWrites, frames.JsonRefusals,  # type: ignore[misc]
                     frames.LeanFrames, frames.FrameMeter,
                     WebSocketServerProtocol):  # (Autobahn's own bases disagree on peer)
    _log = Logger()
    refusal_codes = REFUSAL_CODES
    factory: ClientFactory

    user_id: str = None  # type: ignore[assignment]  # until onConnect
    address: str = None  # type: ignore[assignment]  # until onConnect
    report: Report = None  # type: ignore[assignment]  # until the handshake is accepted
    limits: ConnectionLimits = None  # type: ignore[assignment]  # likewise
    """The connection's L{ConnectionLimits}, once its handshake is accepted."""
    ticket: Ticket | None = None
    """The connection's L{aleatoria.edge.admission.Ticket}, taken over from its HTTP channel."""
    _room: str = None  # type: ignore[assignment]  # until the handshake is accepted
    _identity: Identity
    segment: str
    _counted = False
    _kicked = False
    _closed_by_client = False
    """Whether the client sent the first close frame (it closed; it did not lose us)."""

    def adopt(self, ticket: Ticket) -> None:
        """This connection, once HTTP, is a WebSocket now: its C{ticket} is its own."""
        self.ticket = ticket
        ticket.upgraded()

    @property
    def established(self) -> bool:
        return self.state == self.STATE_OPEN

    def onConnect(self, request: ConnectionRequest) -> None:
        factory = self.factory
        trusted = factory.admission.trusted
        self.address = address = client_address(request, trusted)
        try:
            behind_proxy = proxied(request, trusted)
            secure = ISSLTransport.providedBy(self.transport)
            self._identity, self._room = admit(
                request, factory.origins, secure, factory.identities, behind_proxy)
            bans.check(factory.hub.bans, self._identity.user, address)
            if behind_proxy:  # a direct client is counted by the gate, from its first byte
                factory.admission.admit_proxied(address)
                self._counted = True
        except ConnectionDeny as deny:
            self.denied = deny
            if factory.refusals.first(address):
                self._refused(request, deny)
            raise
        except Exception:
            factory.reporter.daemon.failed(
                self._log, Failure(), f"Handshake from {address} failed",
                operation="websocket_upgrade", remoteAddress=address,
            )
            raise ConnectionDeny(ConnectionDeny.INTERNAL_SERVER_ERROR) from None
        self.user_id = self._identity.user
        self.segment = self._identity.segment
        self.report = factory.reporter.report_for(self.user_id, address)
        self.report.tag("room", self._room)
        self.limits = ConnectionLimits(self, factory.limits, factory.budgets, factory.clock)

    def _refused(self, request: ConnectionRequest, deny: ConnectionDeny) -> None:
        user, room = first(request.params.get("userId")), first(request.params.get("room"))
        self.factory.reporter.daemon.fault(
            "WebSocket upgrade refused", "websocket_upgrade", address=self.address,
            log=self._log,
            line="Refused handshake from {peer} (userId {user}, origin {origin}): {reason}",
            fields={"peer": self.address, "user": shown(user), "origin": shown(request.origin),
                    "reason": shown(deny.reason)},
            userId=user[:SHOWN], room=room[:SHOWN], remoteAddress=self.address,
            reason=deny.reason[:SHOWN], origin=(request.origin or "")[:SHOWN],
        )

    def onOpen(self) -> None:
        frames.forget_handshake(self)
        # open: it has a transport
        frames.take_producer(self, self.limits.open(self.transport))  # type: ignore[arg-type]
        if self._identity.reconnect_token is not None:
            self.factory.outlet.reply(self, "welcome", {
                "userId": self.user_id, "reconnectToken": self._identity.reconnect_token})
        self.factory.outlet.reply(self, "ice_servers", {})
        try:
            self.factory.hub.connected(self, self._room)
        except Exception:
            self.report.failed(self._log, Failure(), "Registering a connection failed",
                               operation="websocket_open", component="protocol")
            self.close(1011, "internal error")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if not self.limits.may_send(payload):
            return
        if isBinary:
            self._malformed("Binary frames are not supported; send JSON text", payload)
            return
        try:
            envelope = decode(payload)
        except InvalidMessage as e:
            self._malformed(str(e), payload)
            return
        self.factory.router.received(self, envelope)

    def frame_refused(self, opcode: int) -> str | None:
        return self.limits.frame_refused(opcode)

    # Twisted always gives the reason, which the base classes may do without
    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        try:
            super().connectionLost(reason)
        finally:
            if self.ticket is not None:
                self.ticket.release()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.report is None:
            return
        factory = self.factory
        if self._counted:
            factory.admission.count_out(self.address)
        factory.hub.disconnected(self, clean=self._kicked or self._closed_by_client)
        if not self.closedByMe and code not in _EXPECTED_CLOSES:
            self.report.fault("WebSocket closed unexpectedly", "websocket_close",
                              closeCode=str(code), reason=reason or "")
        factory.reporter.forget(self.report)

    def onCloseFrame(self, code: int, reasonRaw: bytes) -> bool | None:
        """
        The client closed the connection if its close frame came first: a
        lost connection -- dropped, timed out, closed by a stopping server
        -- did not.
        """
        if not self.closedByMe:
            self._closed_by_client = True
        return super().onCloseFrame(code, reasonRaw)

    def _malformed(self, details: str, raw: bytes) -> None:
        """
        The frame is not a valid envelope: the compat C{error_response}. The
        raw frame, cut to 1 KiB, goes to the report: the one place client
        content may leave the process.
        """
        self.report.fault(
            "Unparsable frame", "parse_message", log=self._log,
            line="Malformed frame from {user}: {details}",
            fields={"user": self.user_id, "details": details},
            details=details, extra={"raw": truncated(raw)},
        )
        self.factory.outlet.malformed(self, details)

    def refuse(self, code: str, sentence: str, **details: object) -> None:
        """An C{error} of the connection's own (its limits')."""
        self.factory.outlet.error(self, code, sentence, details)

    # IConnection

    def may_join(self, room: str) -> bool:
        return self._identity.may_join(room)

    def budget_refills_in(self) -> float:
        return self.limits.budget_refills_in()

    def spent_elsewhere(self, seconds: float) -> None:
        self.limits.spent_elsewhere(seconds)

    def charge(self, messages: int) -> None:
        self.limits.charge(messages)

    def writable(self) -> Deferred[None]:
        return self.limits.writable()

    def holding(self, count: int) -> None:
        self.limits.holding(count)

    def write(self, frame: PreparedMessage) -> None:
        """Write a frame the outlet made, if the client may have it waiting."""
        if self.state != self.STATE_OPEN or not self.limits.admits(len(frame.payloadHybi)):
            return
        try:
            self.write_prepared(frame)
        except Exception:
            self.report.failed(self._log, Failure(), "Writing to the client failed",
                               operation="websocket_write", component="protocol")

    def replaced(self) -> None:
        self.close(CLOSE_REPLACED, "replaced")

    def going_away(self) -> None:
        self.close(CLOSE_GOING_AWAY, SHUTTING_DOWN)

    def kick(self, reason: str) -> None:
        self._kicked = True
        self.close(CLOSE_KICKED, reason)

    def close(self, code: int, reason: str) -> None:
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode()[:MAX_REASON])


class ClientFactory(WebSocketServerFactory):
    """
    What every connection shares, each named: the hub, the router in
    front of it and the outlet behind it, the admission of the port, the
    origin and identity policies, the limits and the message budgets, the
    reporter.

    @param options: Autobahn's protocol options (message sizes, keepalive,
        handshake timeout).
    """

    # Twisted's Factory is generic in its protocol, Autobahn's is not: mypy
    # cannot see a ClientProtocol's factory (a ClientFactory) is this one
    protocol = ClientProtocol  # type: ignore[assignment]

    def __init__(self, *, hub: Hub, router: Router, outlet: Outlet, reporter: Reporter,
                 admission: Admission, origins: OriginPolicy, identities: IdentityPolicy,
                 limits: Limits, budgets: Budgets, clock: IReactorTime,
                 options: Mapping[str, object]) -> None:
        super().__init__(reactor=clock, server=None)
        self.hub = hub
        self.router = router
        self.outlet = outlet
        self.reporter = reporter
        self.admission = admission
        self.origins = origins
        self.identities = identities
        self.limits = limits
        self.budgets = budgets
        self.clock = clock
        self.refusals = Summary(clock, REFUSALS_WINDOW, self._more_refusals)
        """Refused handshakes per address: the first of a window in full, the rest counted."""
        # Origins are checked in one place, admit(); Autobahn's own check
        # lets everything through, "null" included.
        self.setProtocolOptions(failByDrop=False, allowedOrigins=["*"], allowNullOrigin=True,
                                **options)
        self.protocol = frames.sharing_options(ClientProtocol, self)

    def _more_refusals(self, address: str, count: int) -> None:
        ClientProtocol._log.info(
            "Refused {count} more handshakes from {peer} in the last {seconds} s",
            count=count, peer=address, seconds=REFUSALS_WINDOW,
        )
