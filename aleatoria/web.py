"""
The HTTP side of the one port: C{/ws} plus what operators and load
balancers read -- C{/health}, C{/ready}, C{/metrics} (PROTOCOL.md section 1).
"""

import json

from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .metrics import MetricsPage

READY_TIMEOUT = 2.0


class Health(Resource):
    """Liveness: 200 while the process serves (compat body)."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return b'{"status":"ok"}'


class Ready(Resource):
    """Readiness: 200 when the store answers, 503 otherwise."""

    isLeaf = True

    def __init__(self, hub, store, reactor):
        super().__init__()
        self._hub = hub
        self._store = store
        self._reactor = reactor

    def render_GET(self, request):
        d = self._store.ping()
        d.addTimeout(READY_TIMEOUT, self._reactor)
        d.addCallbacks(lambda _: True, lambda _: False)
        d.addCallback(self._answer, request)
        return NOT_DONE_YET

    def _answer(self, reachable, request):
        report = {
            "status": "ok" if reachable else "degraded",
            "store": self._store.kind,
            "storeReachable": reachable,
            "connections": self._hub.connection_count,
        }
        request.setResponseCode(200 if reachable else 503)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(report).encode())
        request.finish()


class QuietSite(Site):
    """
    A Site that writes no access log: load-balancer probes would bury the
    lines operators need; the hub logs every WebSocket connect itself.
    """

    noisy = False

    def log(self, request):
        pass


class _Root(Resource):
    def getChild(self, path, request):
        return notFound()


def make_site(websocket, hub, store, metrics, reactor, handshake_timeout):
    """
    The site on the one port. Its idle timeout is the handshake timeout: a
    client that never completes a request is cut off, while an upgraded
    WebSocket (a request that never completes) is not affected.
    """
    root = _Root()
    root.putChild(b"ws", websocket)
    root.putChild(b"metrics", MetricsPage(metrics))
    root.putChild(b"health", Health())
    root.putChild(b"ready", Ready(hub, store, reactor))
    return QuietSite(root, reactor=reactor, timeout=handshake_timeout)
