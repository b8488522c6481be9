"""
The server API: what a product's backend asks of Aleatoria over HTTP, on
a listener of its own (C{--api-port}) and behind a bearer token
(C{ALEATORIA_API_TOKEN}): post to a room, write to a user, cut a user
off, and read rooms, members, users and load -- across every daemon.

Request bodies are decoded and checked with msgspec, as the WebSocket's
messages are; errors are RFC 9457 problem documents. The OpenAPI document
at C{/api/v1/openapi.json} is built from the same structs
(L{aleatoria.openapi}).
"""

import hmac
import json

import msgspec
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from .interfaces import Refused
from .openapi import document
from .routes import CODES

MAX_BODY = 64 * 1024
"""The largest request body read; a larger one is refused with 413."""

PROBLEM = b"application/problem+json"


class Publish(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A message from C{system} to a room's members on every daemon, kept in its history."""

    room: str
    content: str


class Send(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A direct message from C{system} to a user, kept (read with withUser system)."""

    toUser: str
    content: str


class Disconnect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Close a user's connection, wherever it is, with 4003 and C{reason}."""

    userId: str
    reason: str = "disconnected by the server"


BODIES = {"publish": Publish, "send": Send, "disconnect": Disconnect}
_DECODERS = {name: msgspec.json.Decoder(shape) for name, shape in BODIES.items()}
OPENAPI = document(BODIES)
"""The OpenAPI document, built once: it depends on nothing but the code."""


class Problem(Exception):
    """An answer other than success, as RFC 9457 has it."""

    def __init__(self, status, title, detail, code, **extra):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.extra = extra

    def body(self):
        return json.dumps({"type": "about:blank", "title": self.title, "status": self.status,
                           "detail": self.detail, "code": self.code, **self.extra}).encode()


def _refused(refusal):
    """A hub refusal as the problem it is over HTTP: the wire's code, its status."""
    code = CODES[type(refusal)]
    status = {"user_offline": 404, "unavailable": 503, "quota_exceeded": 429,
              "forbidden": 403}.get(code, 400)
    return Problem(status, _TITLES[status], refusal.sentence, code)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Content Too Large", 415: "Unsupported Media Type",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class ServerAPI(Resource):
    """
    Everything under C{/api/v1}, one leaf: each request is checked (token,
    rate, body) and handed to the hub's L{aleatoria.hub.admin.Admin}.

    @param admin: the hub's L{aleatoria.hub.admin.Admin}.
    @param token: the bearer token (text), compared in constant time.
    @param buckets: a L{aleatoria.limits.KeyedBuckets}, one bucket per
        client address.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, admin, token, buckets):
        super().__init__()
        self._admin = admin
        self._token = f"Bearer {token}".encode()
        self._buckets = buckets
        self._routes = {
            (b"POST", ("publish",)): self._publish,
            (b"POST", ("send",)): self._send,
            (b"POST", ("disconnect",)): self._disconnect,
            (b"GET", ("rooms",)): lambda request, body: admin.rooms(
                *_page(request, admin.ROOMS_PAGE)),
            (b"GET", ("rooms", None, "members")): self._members,
            (b"GET", ("users", None)): lambda request, body: admin.user(request.parts[1]),
            (b"GET", ("stats",)): lambda request, body: admin.stats(),
        }

    def render(self, request):
        request.parts = [part.decode("utf-8", "replace") for part in request.postpath]
        Deferred.fromCoroutine(self._answer(request))
        return NOT_DONE_YET

    async def _answer(self, request):
        gone = []
        request.notifyFinish().addErrback(gone.append)
        try:
            if request.parts == ["openapi.json"] and request.method in (b"GET", b"HEAD"):
                return _json(request, 200, OPENAPI)
            self._authorized(request)
            handler, name = self._route(request)
            body = self._body(request, name)
            result = await handler(request, body)
        except Refused as refusal:
            problem = _refused(refusal)
        except Problem as caught:
            problem = caught
        except Exception:
            self._log.failure("The server API failed to answer")
            problem = Problem(500, "Internal Server Error",
                              "The server failed to answer; it is logged.", "internal")
        else:
            if not gone:
                _json(request, 200, result)
            return None
        if not gone:
            _problem(request, problem)
        return None

    def _authorized(self, request):
        given = request.getHeader(b"authorization") or b""
        if not hmac.compare_digest(given, self._token):
            request.setHeader(b"www-authenticate", b'Bearer realm="aleatoria"')
            raise Problem(401, "Unauthorized",
                          "Send the API token: Authorization: Bearer <ALEATORIA_API_TOKEN>.",
                          "unauthorized")
        address = request.getClientAddress()
        wait = self._buckets.take(getattr(address, "host", str(address)))
        if wait:
            request.setHeader(b"retry-after", str(max(1, round(wait))).encode())
            raise Problem(429, "Too Many Requests",
                          "Too many API requests from this address; slow down.",
                          "rate_limited")

    def _route(self, request):
        parts = request.parts
        methods = set()
        for (method, pattern), handler in self._routes.items():
            if len(pattern) == len(parts) and all(
                    want is None or want == part for want, part in zip(pattern, parts,
                                                                       strict=True)):
                methods.add(method)
                if method == request.method:
                    return handler, pattern[0]
        if methods:
            request.setHeader(b"allow", b", ".join(sorted(methods)))
            raise Problem(405, "Method Not Allowed",
                          f"Use {' or '.join(m.decode() for m in sorted(methods))}.",
                          "method_not_allowed")
        raise Problem(404, "Not Found", "No such API route.", "not_found")

    def _body(self, request, name):
        decoder = _DECODERS.get(name) if request.method == b"POST" else None
        if decoder is None:
            return None
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            raise Problem(415, "Unsupported Media Type",
                          "Send the body as application/json.", "invalid_message")
        raw = request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise Problem(413, "Content Too Large",
                          f"A request body has at most {MAX_BODY} bytes.", "too_large")
        try:
            return decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError) as e:
            raise Problem(400, "Bad Request", str(e), "invalid_message") from None

    async def _publish(self, request, body):
        return await self._admin.publish(body.room, body.content)

    async def _send(self, request, body):
        return await self._admin.send(body.toUser, body.content)

    async def _disconnect(self, request, body):
        return await self._admin.disconnect(body.userId, body.reason)

    def _members(self, request, body):
        return self._admin.members(request.parts[1], *_page(request, self._admin.MEMBERS_PAGE))


def _page(request, largest):
    """C{limit} (1 to C{largest}, default C{largest}) and C{after} of the query."""
    def one(name):
        values = request.args.get(name.encode())
        return values[0].decode("utf-8", "replace") if values else None

    limit = one("limit")
    if limit is None:
        count = largest
    else:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= largest:
            raise Problem(400, "Bad Request", f"limit is a whole number from 1 to {largest}.",
                          "invalid_message")
    return count, one("after") or ""


def _json(request, status, value):
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    request.write(json.dumps(value).encode())
    request.finish()


def _problem(request, problem):
    request.setResponseCode(problem.status)
    request.setHeader(b"content-type", PROBLEM)
    request.setHeader(b"cache-control", b"no-store")
    request.write(problem.body())
    request.finish()

