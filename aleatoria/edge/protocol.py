"""
One client's WebSocket: the handshake checks, framing and limits.

The protocol object is thin. It admits or refuses the handshake, decodes
each frame with L{aleatoria.messages} and hands the result to the
L{aleatoria.routes.Router}, which calls the hub; the hub sends back
through L{IConnection}. It never touches the store.
"""


from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria.domain.clock import format_ns
from aleatoria.domain.limits import KeyedBuckets, PerAddress, Summary, TooMany
from aleatoria.domain.ports import IConnection
from aleatoria.edge import frames as wsframes
from aleatoria.edge.auth import policy_from_config
from aleatoria.edge.conduct import Conduct
from aleatoria.edge.handshake import admit, client_address, first, proxied
from aleatoria.edge.routes import Reads, Router
from aleatoria.edge.wire import SHOWN, InvalidMessage, decode, encode, from_server, shown, truncated

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


def _more_refusals(address, count):
    ClientProtocol._log.info(
        "Refused {count} more handshakes from {peer} in the last {seconds} s",
        count=count, peer=address, seconds=REFUSALS_WINDOW,
    )


def prepare(envelope):
    """Encode and frame a message once, to send on any number of connections."""
    return wsframes.prepare(encode(envelope))


_EXPECTED_CLOSES = frozenset({1000, 1001, 1005, 1006, None})
"""
Close codes that are no news: normal, going away, none given, and a dropped
TCP connection (a closed tab, a lost mobile network).
"""


@implementer(IConnection)
class ClientProtocol(wsframes.DirectWrites, wsframes.JsonRefusals, wsframes.FrameMeter,
                     Conduct, WebSocketServerProtocol):
    _log = Logger()
    refusal_codes = {400: "invalid_request", 401: "unauthorized", 403: "forbidden",
                     429: "rate_limited", 500: "unavailable"}

    user_id = None
    report = None
    _room = None
    _counted = False
    ticket = None
    """The connection's L{aleatoria.gate.Ticket}, taken over from its HTTP channel."""

    def onConnect(self, request):
        secure = ISSLTransport.providedBy(self.transport)
        address = client_address(request, self.factory.trusted_proxies)
        self.peer = address  # what log lines name: the client, as it is counted
        try:
            behind_proxy = proxied(request, self.factory.trusted_proxies)
            self._identity, self._room = admit(
                request, self.factory.origins, secure, self.factory.identities, behind_proxy,
            )
            if behind_proxy:  # a direct client is counted by the gate, from its first byte
                self.factory.attempt(address)
                self.factory.count_in(address)
                self._counted = True
        except ConnectionDeny as deny:
            if not self.factory.refusals.first(address):
                raise
            self.factory.reporter.daemon.fault(
                "WebSocket upgrade refused", "websocket_upgrade", address=address,
                log=self._log,
                line="Refused handshake from {peer} (userId {user}, origin {origin}): {reason}",
                fields={"peer": address, "user": shown(first(request.params.get("userId"))),
                        "origin": shown(request.origin), "reason": shown(deny.reason)},
                userId=first(request.params.get("userId"))[:SHOWN],
                room=first(request.params.get("room"))[:SHOWN],
                remoteAddress=address, reason=deny.reason[:SHOWN],
                origin=(request.origin or "")[:SHOWN],
            )
            raise
        except Exception:
            self.factory.reporter.daemon.failed(
                self._log, Failure(), f"Handshake from {address} failed",
                operation="websocket_upgrade", remoteAddress=address,
            )
            raise ConnectionDeny(ConnectionDeny.INTERNAL_SERVER_ERROR) from None
        self._address = address
        self.user_id = self._identity.user
        self.report = self.factory.reporter.report_for(self.user_id, address)
        self.report.tag("room", self._room)
        self._meter()

    def onOpen(self):
        wsframes.take_producer(self, self._queue())
        if self._identity.reconnect_token is not None:
            self._tell("welcome", {"userId": self.user_id,
                                   "reconnectToken": self._identity.reconnect_token})
        try:
            self.factory.hub.connected(self, self._room)
        except Exception:
            self.report.failed(self._log, Failure(), "Registering a connection failed",
                               operation="websocket_open", component="protocol")
            self.close(1011, "internal error")

    def onMessage(self, payload, isBinary):
        if not self._may_send():
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

    def connectionLost(self, reason):
        try:
            super().connectionLost(reason)
        finally:
            if self.ticket is not None:
                self.ticket.release()

    def onClose(self, wasClean, code, reason):
        if self.report is None:
            return
        if self._counted:
            self.factory.count_out(self._address)
        self.factory.hub.disconnected(self)
        if not self.closedByMe and code not in _EXPECTED_CLOSES:
            self.report.fault("WebSocket closed unexpectedly", "websocket_close",
                              closeCode=str(code), reason=reason or "")

    def _malformed(self, details, raw):
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
        self._answer("error_response", "error_response",
                     {"error": "Invalid message structure", "details": details})

    def _answer(self, kind, code, payload):
        """
        A refusal of the wire's own, counted among the errors answered by
        C{code}: an C{error} (the code in its payload), or the compat
        C{error_response} (its C{messageId} C{err-<time>}).
        """
        self.factory.metrics.errors.labels(code).inc()
        if kind == "error_response":
            self._tell(kind, payload, message_id="err-{now}")
        else:
            self._tell(kind, {**payload, "code": code})

    def _tell(self, kind, payload, message_id=""):
        """
        A message of the connection's own (C{{now}} in C{message_id} is
        its createTime).
        """
        self.factory.metrics.sent.labels(kind).inc()
        now = format_ns(int(self.factory.clock.seconds() * 1e9))
        self.send(prepare(from_server(kind, self.user_id, payload, now,
                                      message_id=message_id.format(now=now))))

    # IConnection

    def may_join(self, room):
        return self._identity.may_join(room)

    def send(self, prepared):
        if self.state != self.STATE_OPEN:
            return
        if not self._backlog.admits(len(prepared.payloadHybi)):
            self._evict()
            return
        try:
            self.write_prepared(prepared)
        except Exception:
            self.report.failed(self._log, Failure(), "Writing to the client failed",
                               operation="websocket_write", component="protocol")

    def replaced(self):
        self.close(CLOSE_REPLACED, "replaced")

    def going_away(self):
        self.close(CLOSE_GOING_AWAY, SHUTTING_DOWN)

    def kick(self, reason):
        self.close(CLOSE_KICKED, reason)

    def close(self, code, reason):
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode()[:123])


class ClientFactory(WebSocketServerFactory):
    """
    Carries what every connection shares: the hub and the router in front
    of it, the origin and token policies, the limits and the reporter.

    @param config: the L{aleatoria.config.Config} for limits and keepalive.
    """

    protocol = ClientProtocol

    handing_over = None
    """The gate ticket of the HTTP connection being upgraded, for L{buildProtocol}."""

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.ticket, self.handing_over = self.handing_over, None
        if protocol.ticket is not None:
            protocol.ticket.upgraded()
        return protocol

    def count_in(self, address):
        """
        One more connection from C{address}.

        @raise ConnectionDeny: 429 when the address has its maximum already.
        """
        try:
            self._per_address.count_in(address)
        except TooMany:
            raise ConnectionDeny(429, "too many connections from your address") from None

    def attempt(self, address):
        """
        One more connection attempt from C{address} (behind a proxy).

        @raise ConnectionDeny: 429 when the address is over its rate.
        """
        if self.attempts.take(address):
            raise ConnectionDeny(429, "too many connection attempts from your address")

    def count_out(self, address):
        self._per_address.count_out(address)

    def __init__(self, hub, config, reactor, reporter, metrics, attempts):
        super().__init__(reactor=reactor, server=None)
        wsframes.lazy_debug_lines()
        self.hub = hub
        self.router = Router(hub, reporter, metrics,
                             Reads(config.max_reads, config.max_reads_per_ip))
        self.reporter = reporter
        self.metrics = metrics
        self.origins = config.origin_policy()
        self.identities = policy_from_config(config)
        self.refusals = Summary(reactor, REFUSALS_WINDOW, _more_refusals)
        """Refused handshakes per address: the first of a window in full, the rest counted."""
        self.outbound = (config.outbound_messages, config.outbound_bytes, config.outbound_stall)
        self.rate = (config.rate_limit, config.rate_burst)
        self.messages = KeyedBuckets(config.rate_limit, config.rate_burst, reactor.seconds)
        """Each user's messages, whichever connection (or reconnection) sends them."""
        self.address_messages = KeyedBuckets(
            config.address_rate, config.address_burst, reactor.seconds)
        """Each client address's messages, whichever users send them."""
        self.attempts = attempts
        self.trusted_proxies = config.trusted_proxy
        self.clock = reactor
        self._per_address = PerAddress(config.max_connections_per_ip)
        self.setProtocolOptions(
            maxMessagePayloadSize=config.max_message_size,
            maxFramePayloadSize=config.max_message_size,
            autoPingInterval=config.ping_interval,
            autoPingTimeout=config.idle_timeout - config.ping_interval,
            failByDrop=False,
            openHandshakeTimeout=config.handshake_timeout,
            # Origins are checked in one place, admit(); let Autobahn's own
            # check pass everything through, "null" included.
            allowedOrigins=["*"],
            allowNullOrigin=True,
        )
