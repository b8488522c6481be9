"""
The HTTP side of the one port: C{/ws} plus what operators and load
balancers read -- C{/health}, C{/ready}, C{/metrics} (docs/protocol.rst, "HTTP").
"""

import json
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.util import peer2str
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from .handshake import admit, client_address, proxied
from .metrics import MetricsPage

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
    """A request whose answer names no software (twisted.web sends its version)."""

    def setHeader(self, name, value):
        if name.lower() != b"server":
            super().setHeader(name, value)


class _Channel(HTTPChannel):
    """An HTTP connection that gives its gate ticket back when it ends."""

    ticket = None

    def connectionLost(self, reason):
        if self.ticket is not None:
            self.ticket.release()
        super().connectionLost(reason)


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


class GatedSite(QuietSite):
    """The clients' site: every connection passes its L{aleatoria.gate.Gate}."""

    protocol = _Channel

    def __init__(self, resource, gate, **kwargs):
        super().__init__(resource, **kwargs)
        self._gate = gate

    def buildProtocol(self, addr):
        return self._gate.admit(addr, lambda: super(GatedSite, self).buildProtocol(addr))


def metrics_site(metrics, reactor):
    """C{/metrics} alone, for a port that only the monitoring can reach."""
    root = _Root()
    root.putChild(b"metrics", MetricsPage(metrics))
    return QuietSite(root, reactor=reactor)


def api_site(api, reactor):
    """The server API, under C{/api/v1}, for a port of its own."""
    root, versions = _Root(), _Root()
    root.putChild(b"api", versions)
    versions.putChild(b"v1", api)
    return QuietSite(root, reactor=reactor)


_DEMO_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
               ".css": b"text/css; charset=utf-8"}
_DEMO_POLICY = (b"default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; "
                b"img-src 'self' data:; frame-ancestors 'none'")


def demo_pages():
    """
    The demo app's files (package data: aleatoria/demo), by the name they
    are served at -- C{index.html} at C{/} too. Only these: no listing,
    nothing else from the disk.
    """
    folder = resources.files("aleatoria") / "demo"
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
        request.setHeader(b"x-content-type-options", b"nosniff")
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
