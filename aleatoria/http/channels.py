"""
The HTTP sites of the daemon's ports: every connection passes a gate
(L{aleatoria.edge.admission.Gate}); every request's head is screened
before one byte of its body is read; answers name no software and carry
the guard headers, error pages included; nothing is logged per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO
from typing import Any

from twisted.logger import Logger
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from aleatoria.edge.admission import GUARDS, Gate, refusal


class _Anonymous(Request):
    """
    A request whose answer names no software (twisted.web sends its
    version) and carries the L{GUARDS}, error pages included. Its body is
    kept in memory, never in a temporary file: its site bounds it
    (L{GatedSite}).
    """

    def setHeader(self, name, value):
        if name.lower() != b"server":
            super().setHeader(name, value)

    def process(self):
        for name, value in GUARDS:
            self.setHeader(name, value)
        super().process()

    def gotLength(self, length):
        self.content = BytesIO()

    def handleContentChunk(self, data):
        if self.content.tell() + len(data) > self.channel.site.max_body:
            self.channel.refuse(self.channel.site.too_large)
        else:
            self.content.write(data)


_TWISTED_WEB = Logger(namespace="twisted.web.http.HTTPChannel")


class _Channel(HTTPChannel):
    """
    An HTTP connection behind the gate. Its site screens each request's
    head before one byte of the body is read: a refusal is answered at
    once and the connection closed, the body left unread. It gives its
    gate ticket back when it ends.
    """

    ticket = None
    _refused = False

    def __init__(self):
        super().__init__()
        # twisted.web's own lines ("Timing out client") keep its namespace,
        # not this class's (a Logger class attribute takes the subclass's):
        # of a library's lines only the errors get through
        self._log = _TWISTED_WEB

    def allHeadersReceived(self):
        refused = self.site.screen(self.requests[-1], self.length)
        if refused is None:
            super().allHeadersReceived()
        else:
            self.refuse(refused)

    def refuse(self, answer):
        """Answer C{answer} (the bytes of a L{refusal}) and read no more."""
        if not self._refused:
            self._refused = True
            self.transport.write(answer)
            self.loseConnection()

    def rawDataReceived(self, data):
        if not self._refused:
            super().rawDataReceived(data)

    def allContentReceived(self):
        if not self._refused:
            super().allContentReceived()

    def connectionLost(self, reason):
        if self.ticket is not None:
            self.ticket.release()
        super().connectionLost(reason)


_UPGRADE = re.compile(rb"GET /ws[ ?][^\r\n]* HTTP/1\.1\r\n")
_UPGRADE_HEADER = re.compile(rb"\r\nupgrade:[ \t]*websocket[ \t]*\r\n", re.IGNORECASE)
_BODY_HEADER = re.compile(rb"\r\n(content-length|transfer-encoding):", re.IGNORECASE)
_MAX_HEAD = 16384
"""twisted.web's own bound on a request's head (C{totalHeadersSize})."""


class _ClientsChannel(_Channel):
    """
    A connection to the clients' port. Its usual first bytes -- a whole
    upgrade of C{/ws}, alone -- go straight to the WebSocket
    (L{aleatoria.http.websocket.WebSocketEndpoint.take_over}); anything
    else, twisted.web reads as ever.
    """

    _first = True

    def dataReceived(self, data):
        if self._first:
            self._first = False
            if (len(data) <= _MAX_HEAD and data.endswith(b"\r\n\r\n")
                    and data.find(b"\r\n\r\n") == len(data) - 4 and _UPGRADE.match(data)
                    and _UPGRADE_HEADER.search(data) and not _BODY_HEADER.search(data)):
                self.site.upgrade.take_over(self, data)
                return
        super().dataReceived(data)


class _RequestChannel(_Channel):
    """
    A connection that stays HTTP (API, metrics): the gate's deadline runs
    for each request, from its first byte until it is in whole; between
    requests, twisted.web's idle timeout closes it.
    """

    def dataReceived(self, data):
        if self.ticket is not None:
            self.ticket.reading()
        super().dataReceived(data)

    def allContentReceived(self):
        if self.ticket is not None and not self._refused:
            self.ticket.answering()
        super().allContentReceived()

    def requestDone(self, request):
        if self.ticket is not None:
            self.ticket.answered()
        super().requestDone(request)


class QuietSite(Site):
    """
    A Site that writes no access log: load-balancer probes would bury the
    lines operators need; the hub logs every WebSocket connect itself. Its
    answers name no software.
    """

    noisy = False
    requestFactory = _Anonymous

    def log(self, request: http.Request) -> None:
        pass


NO_BODY = refusal(413, b"application/json",
                  b'{"error": "requests to this port have no body", "code": "too_large"}')


class GatedSite(QuietSite):
    """
    A site whose every connection passes its L{aleatoria.edge.admission.Gate}, and
    whose requests are screened when their head is in, before any of
    their body is read: a body longer than C{max_body} (by default, any
    body) is answered C{too_large} and its connection closed; a chunked
    one is cut off as soon as it grows past C{max_body}.

    @param screen: first, C{screen(request, length)} with the body length
        the head declares (C{None}: chunked): C{None} to read on, or the
        bytes of a L{refusal} to answer at once.
    """

    protocol = _Channel  # type: ignore[assignment]  # a factory of channels, as Site's
    upgrade = None
    """The L{aleatoria.http.websocket.WebSocketEndpoint} that takes upgrades at once, if any."""

    def __init__(self, resource: IResource, gate: Gate,
                 screen: Callable[[Any, int | None], bytes | None] | None = None,
                 max_body: int = 0, too_large: bytes = NO_BODY, upgrade: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        if upgrade is not None:
            self.upgrade = upgrade
            self.protocol = _ClientsChannel
        self._gate = gate
        self._screen = screen
        self.max_body = max_body
        self.too_large = too_large

    def buildProtocol(self, addr):
        return self._gate.admit(addr, lambda: super(GatedSite, self).buildProtocol(addr))

    def screen(self, request: Request, length: int | None) -> bytes | None:
        """The refusal of a request whose head is in, or C{None}."""
        if self._screen is not None:
            refused = self._screen(request, length)
            if refused is not None:
                return refused
        if length is None or request.requestHeaders.hasHeader(b"transfer-encoding"):
            return None if self.max_body else self.too_large
        return self.too_large if length > self.max_body else None


class RequestSite(GatedSite):
    """A gated site whose connections stay HTTP: the API's and the metrics' ports."""

    protocol = _RequestChannel
