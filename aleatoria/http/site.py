"""
The HTTP side of the one port: C{/ws} plus what operators and load
balancers read -- C{/health}, C{/ready}, C{/metrics} (docs/protocol.rst, "HTTP").
"""

import json
from importlib import resources
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.util import peer2str
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from aleatoria.edge.gate import GUARDS, refusal
from aleatoria.edge.handshake import admit, client_address, proxied
from aleatoria.ops.metrics import MetricsPage

READY_TIMEOUT = 2.0


class Health(Resource):
    """Liveness: 200 while the process serves (compat body)."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return b'{"status":"ok"}'


class Ready(Resource):
    """
    Readiness: 200 while the store answers and -- on Redis -- posts from
    the other daemons reach this one (the pub/sub connection is
    subscribed); 503 otherwise.
    """

    isLeaf = True

    def __init__(self, hub, store, peers, reactor):
        super().__init__()
        self._hub = hub
        self._store = store
        self._peers = peers
        self._reactor = reactor

    def render_GET(self, request):
        gone = []
        request.notifyFinish().addErrback(gone.append)
        d = self._store.ping()
        d.addTimeout(READY_TIMEOUT, self._reactor)
        d.addCallbacks(lambda _: True, lambda _: False)
        d.addCallback(self._answer, request, gone)
        return NOT_DONE_YET

    def _answer(self, reachable, request, gone):
        if gone:
            return
        report = {
            "store": self._store.kind,
            "storeReachable": reachable,
            "connections": self._hub.connection_count,
        }
        ready = reachable
        if self._store.kind == "redis":
            report["subscribed"] = subscribed = self._peers.subscribed
            ready = ready and subscribed
        request.setResponseCode(200 if ready else 503)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps({"status": "ok" if ready else "degraded", **report}).encode())
        request.finish()


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

    def render(self, request):
        if (request.getHeader(b"upgrade") or b"").lower() != b"websocket":
            status, answer, page = self._verdict(request)
            request.setResponseCode(status)
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
        ticket, request.channel.ticket = request.channel.ticket, None
        self._factory.handing_over = ticket
        try:
            return super().render(request)
        finally:
            self._factory.handing_over = None

    def _verdict(self, request):
        """
        What an upgrade with C{request}'s query, headers and address would
        be answered -- the checks of C{ClientProtocol.onConnect}, the
        attempt counted as there, but no connection and no identity made:
        C{(status, body, page)}, 426 when it would be admitted; C{page} is
        the origin to let read the answer (an allowed page's), or C{None}.
        """
        factory = self._factory
        handshake = _PlainHandshake(request, factory.trusted_proxies)
        origin = handshake.origin
        page = origin if origin and factory.origins.permits(origin, *handshake.site) else None
        address = client_address(handshake, factory.trusted_proxies)
        try:
            admit(handshake, factory.origins, handshake.secure, factory.identities,
                  handshake.behind_proxy)
            if handshake.behind_proxy:
                factory.attempt(address)
                factory.count_in(address)
                factory.count_out(address)
        except ConnectionDeny as deny:
            code = factory.protocol.refusal_codes.get(deny.code, "refused")
            return deny.code, {"error": deny.reason, "code": code}, page
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

    def __init__(self, request, trusted):
        self.headers = {
            name.decode("iso-8859-1").lower(): ", ".join(v.decode("iso-8859-1") for v in values)
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        self.params = parse_qs(urlsplit(request.uri.decode("iso-8859-1")).query)
        self.peer = peer2str(request.transport)
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


class _Channel(HTTPChannel):
    """
    An HTTP connection behind the gate. Its site screens each request's
    head before one byte of the body is read: a refusal is answered at
    once and the connection closed, the body left unread. It gives its
    gate ticket back when it ends.
    """

    ticket = None
    _refused = False

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

    def log(self, request):
        pass


NO_BODY = refusal(413, b"application/json",
                  b'{"error": "requests to this port have no body", "code": "too_large"}')


class GatedSite(QuietSite):
    """
    A site whose every connection passes its L{aleatoria.gate.Gate}, and
    whose requests are screened when their head is in, before any of
    their body is read: a body longer than C{max_body} (by default, any
    body) is answered C{too_large} and its connection closed; a chunked
    one is cut off as soon as it grows past C{max_body}.

    @param screen: first, C{screen(request, length)} with the body length
        the head declares (C{None}: chunked): C{None} to read on, or the
        bytes of a L{refusal} to answer at once.
    """

    protocol = _Channel

    def __init__(self, resource, gate, screen=None, max_body=0, too_large=NO_BODY, **kwargs):
        super().__init__(resource, **kwargs)
        self._gate = gate
        self._screen = screen
        self.max_body = max_body
        self.too_large = too_large

    def buildProtocol(self, addr):
        return self._gate.admit(addr, lambda: super(GatedSite, self).buildProtocol(addr))

    def screen(self, request, length):
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


def metrics_site(metrics, reactor, gate, timeout):
    """C{/metrics} alone, for a port that only the monitoring can reach."""
    root = _Root()
    root.putChild(b"metrics", MetricsPage(metrics))
    return RequestSite(root, gate, reactor=reactor, timeout=timeout)


def api_site(api, reactor, gate, timeout):
    """
    The server API, under C{/api/v1}, for a port of its own: C{api} (a
    L{aleatoria.api.ServerAPI}) screens each request that has a body when
    its head is in, and bounds the body.
    """
    root, versions = _Root(), _Root()
    root.putChild(b"api", versions)
    versions.putChild(b"v1", api)
    return RequestSite(root, gate, screen=api.screen, max_body=api.max_body,
                       too_large=api.too_large, reactor=reactor, timeout=timeout)


_DEMO_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
               ".css": b"text/css; charset=utf-8"}
_DEMO_POLICY = (b"default-src 'self'; connect-src 'self'; media-src 'self' blob:; "
                b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                b"frame-ancestors 'none'")


def demo_pages():
    """
    The demo app's files (package data: aleatoria/demo), by the name they
    are served at -- C{index.html} at C{/} too. Only these: no listing,
    nothing else from the disk.
    """
    folder = resources.files("aleatoria.http") / "demo"
    pages = {}
    for name, kind in (("index.html", ".html"), ("app.js", ".js"), ("aleatoria.js", ".js"),
                       ("style.css", ".css")):
        page = _Static((folder / name).read_bytes(), _DEMO_TYPES[kind])
        pages[name.encode()] = page
        if name == "index.html":
            pages[b""] = page
    return pages


class _Static(Resource):
    """
    One file, read at start-up, with its type and a strict content policy;
    nothing below it.
    """

    def getChild(self, path, request):
        return notFound()

    def __init__(self, body, kind):
        super().__init__()
        self._body = body
        self._kind = kind

    def render_GET(self, request):
        request.setHeader(b"content-type", self._kind)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"content-security-policy", _DEMO_POLICY)
        return self._body


class _Root(Resource):
    def getChild(self, path, request):
        return notFound()


def make_site(websocket, hub, store, peers, metrics, reactor, handshake_timeout, gate,
              demo=False):
    """
    The site on the clients' port (with C{/metrics}, unless C{metrics} is
    C{None}: served on a port of its own; with the demo app at C{/} if
    C{demo}). Its idle timeout is the handshake timeout: a client that
    never completes a request is cut off, while an upgraded WebSocket (a
    request that never completes) is not affected.
    """
    root = _Root()
    if demo:
        for name, page in demo_pages().items():
            root.putChild(name, page)
    root.putChild(b"ws", websocket)
    if metrics is not None:
        root.putChild(b"metrics", MetricsPage(metrics))
    root.putChild(b"health", Health())
    root.putChild(b"ready", Ready(hub, store, peers, reactor))
    return GatedSite(root, gate, reactor=reactor, timeout=handshake_timeout)
