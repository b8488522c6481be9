"""
The pages of the clients' port beside C{/ws}: C{/health}, C{/ready} and
the demo app (docs/protocol.rst, "HTTP").
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from aleatoria.domain.hub import Hub
from aleatoria.memory.backend import MemoryBackend
from aleatoria.redis.backend import RedisBackend

READY_TIMEOUT = 2.0


class Health(Resource):
    """Liveness: 200 while the process serves (compat body)."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return b'{"status":"ok"}'


class Ready(Resource):
    """
    Readiness: 200 while the store answers and -- on Redis -- posts from
    the other daemons reach this one (the pub/sub connection is
    subscribed) and it has told Redis who is connected here since Redis
    (or the primary, after a failover) came back (joined: until then its
    users are not paired with); 503 otherwise.
    """

    isLeaf = True

    def __init__(self, hub: Hub, backend: MemoryBackend | RedisBackend,
                 reactor: IReactorTime) -> None:
        super().__init__()
        self._hub = hub
        self._backend = backend
        self._reactor = reactor

    def render_GET(self, request: Request) -> int:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        d: Deferred[Any] = self._backend.sessions.ping()  # chained in place
        d.addTimeout(READY_TIMEOUT, self._reactor)
        d.addCallbacks(lambda _: True, lambda _: False)
        d.addCallback(self._answer, request, gone)
        return NOT_DONE_YET

    def _answer(self, reachable: bool, request: Request, gone: list[Failure]) -> None:
        if gone:
            return
        report: dict[str, object] = {
            "store": self._backend.kind,
            "storeReachable": reachable,
            "connections": self._hub.connection_count,
        }
        ready = reachable
        if self._backend.kind == "redis":
            report["subscribed"] = subscribed = self._backend.bus.subscribed
            # of kind redis: RedisSessions, which has joined
            report["joined"] = joined = self._backend.sessions.joined  # type: ignore[union-attr]
            ready = ready and subscribed and joined
        request.setResponseCode(200 if ready else 503)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps({"status": "ok" if ready else "degraded", **report}).encode())
        request.finish()


_DEMO_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
               ".css": b"text/css; charset=utf-8"}
_DEMO_POLICY = (b"default-src 'self'; connect-src 'self'; media-src 'self' blob:; "
                b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                b"frame-ancestors 'none'")


def demo_pages() -> dict[bytes, Resource]:
    """
    The demo app's files (package data: aleatoria/demo), by the name they
    are served at -- C{index.html} at C{/} too. Only these: no listing,
    nothing else from the disk.
    """
    folder = resources.files("aleatoria.http") / "demo"
    pages: dict[bytes, Resource] = {}
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

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()

    def __init__(self, body: bytes, kind: bytes) -> None:
        super().__init__()
        self._body = body
        self._kind = kind

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self._kind)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"content-security-policy", _DEMO_POLICY)
        return self._body


class Root(Resource):
    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()
