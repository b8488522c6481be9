"""
C{/ws}: the upgrade to a WebSocket -- which takes over its connection's
gate ticket -- or, for a plain GET with the same query, the verdict on one
(docs/protocol.rst, "HTTP").
"""

from __future__ import annotations

import json
from http import HTTPStatus
from ipaddress import IPv4Network, IPv6Network
from typing import Any
from urllib.parse import parse_qs, urlsplit

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.util import peer2str
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.web.server import Request

from aleatoria.edge import bans
from aleatoria.edge.handshake import admit, client_address, proxied
from aleatoria.edge.protocol import REFUSAL_CODES, ClientProtocol


class WebSocketEndpoint(WebSocketResource):
    """
    C{/ws}: the upgrade to a WebSocket, or -- for a plain GET with the same
    query -- the verdict on one, for clients that cannot see why an upgrade
    was refused (browsers, Node's WebSocket): the refusal the upgrade would
    get, or a plain 426 Upgrade Required when it would be admitted
    (docs/protocol.rst, "HTTP"). The WebSocket takes over the connection's
    gate ticket from the HTTP channel.
    """

    _log = Logger()

    def render(self, request: Request) -> bytes | int:
        if (request.getHeader(b"upgrade") or b"").lower() != b"websocket":
            status, answer, page = self._verdict(request)
            request.setResponseCode(status, HTTPStatus(status).phrase.encode())
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"no-store")
            request.setHeader(b"vary", b"Origin")
            if page:
                request.setHeader(b"access-control-allow-origin", page.encode())
            request.channel.persistent = False  # it holds no slot of the address for long
            if status == 426:
                request.setHeader(b"upgrade", b"websocket")
                request.setHeader(b"connection", b"Upgrade, close")
            else:
                request.setHeader(b"connection", b"close")
            return json.dumps(answer).encode()
        # the channel is ours (aleatoria.http.channels): it holds the gate ticket
        ticket, request.channel.ticket = request.channel.ticket, None  # type: ignore[attr-defined]
        transport = request.channel.transport
        answer = super().render(request)
        _hand_over(ticket, _protocol_of(transport))
        return answer

    def take_over(self, channel: Any, head: bytes) -> None:
        """
        Upgrade C{channel}'s connection at once, its request's C{head}
        (an upgrade of C{/ws}, all of it, and nothing after it) read by
        Autobahn alone: twisted.web would parse the head, find the
        resource, and write the head out again for Autobahn to parse
        (a fifth of the CPU of a connect, by benchmarks/connect_cost.py).
        """
        channel.setTimeout(None)
        transport, channel.transport = channel.transport, None
        protocol = self._factory.buildProtocol(transport.getPeer())
        if isinstance(transport, ProtocolWrapper):
            transport.wrappedProtocol = protocol
        elif isinstance(transport.protocol, ProtocolWrapper):
            transport.protocol.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        ticket, channel.ticket = channel.ticket, None
        _hand_over(ticket, protocol)
        protocol.dataReceived(head)

    def _verdict(self, request: Request) -> tuple[int, dict[str, object], str | None]:
        """
        What an upgrade with C{request}'s query, headers and address would
        be answered -- the checks of C{ClientProtocol.onConnect}, the
        attempt counted as there, but no connection and no identity made:
        C{(status, body, page)}, 426 when it would be admitted; C{page} is
        the origin to let read the answer (an allowed page's), or C{None}.
        """
        factory = self._factory
        trusted = factory.admission.trusted
        handshake = _PlainHandshake(request, trusted)
        origin = handshake.origin
        page = origin if origin and factory.origins.permits(origin, *handshake.site) else None
        address = client_address(handshake, trusted)
        try:
            identity, _ = admit(handshake, factory.origins, handshake.secure,
                                factory.identities, handshake.behind_proxy)
            bans.check(factory.hub.bans, identity.user, address, handshake=False)
            if handshake.behind_proxy:
                factory.admission.admit_proxied(address)
                factory.admission.count_out(address)
        except ConnectionDeny as deny:
            return deny.code, bans.refusal_body(deny, REFUSAL_CODES), page
        except Exception:
            self._log.failure("Judging a handshake from {peer} failed", peer=address)
            return 500, {"error": "internal error", "code": "unavailable"}, page
        return 426, {
            "error": "This is a WebSocket endpoint: connect with a WebSocket client.",
            "code": "upgrade_required",
        }, page


class _PlainHandshake:
    """
    A plain GET of C{/ws} as L{admit} reads an upgrade request: lowercased
    headers, the query parsed as Autobahn does, the peer named as Autobahn
    names it, and the page's C{Origin}. A browser sends none with a fetch
    from a page of the same origin; C{Sec-Fetch-Site: same-origin} says the
    page is the site's own, the origin its upgrade would carry.

    @ivar site: C{(host, secure)} of the site as the page sees it (as a
        trusted proxy tells it, if any).
    """

    def __init__(self, request: Request, trusted: tuple[IPv4Network | IPv6Network, ...]) -> None:
        self.headers = {
            name.decode("iso-8859-1").lower(): ", ".join(v.decode("iso-8859-1") for v in values)
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        self.params = parse_qs(urlsplit(request.uri.decode("iso-8859-1")).query)
        self.peer = peer2str(request.transport)  # type: ignore[arg-type]  # answered: it has one
        self.secure = request.isSecure()
        self.behind_proxy = proxied(self, trusted)
        host, secure = self.headers.get("host", ""), self.secure
        if self.behind_proxy:
            proto = self.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            secure = proto == "https" if proto else secure
            host = self.headers.get("x-forwarded-host", "").split(",")[0].strip() or host
        self.site = (host, secure)
        self.origin = self.headers.get("origin", "").strip()
        if not self.origin and self.headers.get("sec-fetch-site") == "same-origin":
            self.origin = f"{'https' if secure else 'http'}://{host}"


def _hand_over(ticket: Any, protocol: object) -> None:
    """The connection's gate C{ticket}, the WebSocket's now (or given back)."""
    if ticket is not None:
        if isinstance(protocol, ClientProtocol):
            protocol.adopt(ticket)
        else:
            ticket.release()


def _protocol_of(transport: Any) -> object:
    """The protocol a transport taken over by Autobahn now serves (beneath TLS, too)."""
    protocol = transport.protocol
    if isinstance(transport, ProtocolWrapper):
        return transport.wrappedProtocol
    if isinstance(protocol, ProtocolWrapper):
        return protocol.wrappedProtocol
    return protocol
