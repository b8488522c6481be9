"""
The server API: what a product's backend asks of Aleatoria over HTTP, on
a listener of its own (C{--api-port}) and behind a bearer token
(C{ALEATORIA_API_TOKEN}): post to a room, write to a user, cut a user
off, and read rooms, members, users and load -- across every daemon.

A request with a body is screened when its head is in, before a byte of
the body is read: the token, then the body's declared length. Failed
authentications are budgeted per address, the budget asked before the
token is compared; each refusal is logged, summed up per address.
Request bodies are decoded and checked with msgspec, as the WebSocket's
messages are; errors are RFC 9457 problem documents. The OpenAPI document
at C{/api/v1/openapi.json} is built from the same structs
(L{aleatoria.http.openapi}).
"""

import hmac
import json
from http import HTTPStatus
from typing import Annotated

import msgspec
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from aleatoria.domain.admin import Admin
from aleatoria.domain.limits import KeyedBuckets
from aleatoria.domain.refusals import Refused
from aleatoria.domain.rules import Reason, RoomName, UserId
from aleatoria.edge.admission import refusal
from aleatoria.edge.handshake import direct_address
from aleatoria.edge.routes import CODES
from aleatoria.http import bans
from aleatoria.http.asked import Asked, JsonObject, Route, Routes
from aleatoria.http.openapi import document
from aleatoria.http.problems import Problem
from aleatoria.ops.budgets import Summary

MAX_BODY = 64 * 1024
"""The largest request body read; a larger one is refused with 413."""

PROBLEM = b"application/problem+json"

REFUSALS_WINDOW = 60
"""Seconds over which refused authentications from one address are summed up in one line."""


Content = Annotated[str, msgspec.Meta(min_length=1)]


class Publish(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A message from C{system} to a room's members on every daemon, kept in its history."""

    room: RoomName
    content: Content


class Send(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A direct message from C{system} to a user, kept (read with withUser system)."""

    toUser: UserId
    content: Content


class Disconnect(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Close a user's connection, wherever it is, with 4003 and C{reason}."""

    userId: UserId
    reason: Reason = "disconnected by the server"
    banSeconds: bans.Seconds | msgspec.UnsetType = msgspec.UNSET


BODIES = {"publish": Publish, "send": Send, "disconnect": Disconnect, **bans.BODIES}
_DECODERS = {name: msgspec.json.Decoder(shape) for name, shape in BODIES.items()}
OPENAPI = document(BODIES, bans.ANSWERS, bans.PATHS)
"""The OpenAPI document, built once: it depends on nothing but the code."""


def _refused(refusal: Refused) -> Problem:
    """A hub refusal as the problem it is over HTTP: the wire's code, its status."""
    code = CODES[type(refusal)]
    status = {"user_offline": 404, "unavailable": 503, "quota_exceeded": 429,
              "forbidden": 403}.get(code, 400)
    return Problem(status, _TITLES[status], refusal.sentence, code)


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Content Too Large", 415: "Unsupported Media Type",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _refusal(problem: Problem) -> bytes:
    """A problem as the bytes of an answer sent before the body is read."""
    return refusal(problem.status, PROBLEM, problem.body(), problem.headers)


TOO_LARGE = _refusal(Problem(413, "Content Too Large",
                             f"A request body has at most {MAX_BODY} bytes.", "too_large"))


class ServerAPI(Resource):
    """
    Everything under C{/api/v1}, one leaf: each request is checked (token,
    rate, body) and handed to the hub's L{aleatoria.domain.admin.Admin}.

    @param admin: the hub's L{aleatoria.domain.admin.Admin}.
    @param token: the bearer token (text), compared in constant time.
    @param buckets: a L{aleatoria.domain.limits.KeyedBuckets}, one bucket per
        client address: requests.
    @param failures: a L{aleatoria.domain.limits.KeyedBuckets}, one bucket per
        client address: failed authentications.
    @param clock: when refusals are summed up.
    @param routes: more routes, as C{self._routes} has them (the reports').
    """

    isLeaf = True
    max_body = MAX_BODY
    too_large = TOO_LARGE
    _log = Logger()

    def __init__(self, admin: Admin, token: str, buckets: KeyedBuckets, failures: KeyedBuckets,
                 clock: IReactorTime, routes: Routes | None = None) -> None:
        super().__init__()
        self._admin = admin
        self._token = f"Bearer {token}".encode()
        self._buckets = buckets
        self._failures = failures
        self._refusals = Summary(clock, REFUSALS_WINDOW, self._more_refused)
        self._routes: Routes = {
            (b"POST", ("publish",)): self._publish,
            (b"POST", ("send",)): self._send,
            (b"POST", ("disconnect",)): self._disconnect,
            (b"GET", ("rooms",)): self._rooms,
            (b"GET", ("rooms", None, "members")): self._members,
            (b"GET", ("users", None)): self._user,
            (b"GET", ("stats",)): self._stats,
            **(routes or {}),
        }
        self._routes.update(bans.routes(admin.bans))

    def screen(self, request: Asked, length: int | None) -> bytes | None:
        """
        For a request whose head is in: if it declares a body, the bytes
        of its refusal (401, 429) or C{None}, the body still unread.
        """
        if length == 0 and not request.requestHeaders.hasHeader(b"transfer-encoding"):
            return None
        try:
            self._authorized(request)
        except Problem as problem:
            return _refusal(problem)
        request.admitted = True
        return None

    def render(self, request: Asked) -> int:  # type: ignore[override]  # twisted.web's, routed
        request.parts = [part.decode("utf-8", "replace") for part in request.postpath]
        Deferred.fromCoroutine(self._answer(request))
        return NOT_DONE_YET

    async def _answer(self, request: Asked) -> None:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        try:
            if request.parts == ["openapi.json"] and request.method in (b"GET", b"HEAD"):
                return _json(request, 200, OPENAPI)
            if not getattr(request, "admitted", False):
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
                _json(request, 201 if isinstance(result, bans.Created) else 200, result)
            return None
        if not gone:
            _problem(request, problem)
        return None

    def _authorized(self, request: Asked) -> None:
        """
        The token, unless the address spent its failure budget (then it is
        not even compared); then the address's rate.
        """
        host = getattr(request.getClientAddress(), "host", "")
        address = direct_address(host, ()) or host
        wait = self._failures.next_token_in(address)
        if wait:
            self._refused(address, "its budget of failed authentications is spent")
            raise Problem(429, "Too Many Requests",
                          "Too many failed authentications from this address; wait.",
                          "rate_limited", headers=_retry_after(wait))
        given = request.getHeader(b"authorization") or b""
        if not hmac.compare_digest(given, self._token):
            self._failures.delay(address)
            self._refused(address, "wrong token" if given else "no token")
            raise Problem(401, "Unauthorized",
                          "Send the API token: Authorization: Bearer <ALEATORIA_API_TOKEN>.",
                          "unauthorized",
                          headers=((b"WWW-Authenticate", b'Bearer realm="aleatoria"'),))
        wait = self._buckets.delay(address)
        if wait:
            raise Problem(429, "Too Many Requests",
                          "Too many API requests from this address; slow down.",
                          "rate_limited", headers=_retry_after(wait))

    def _refused(self, address: str, why: str) -> None:
        if self._refusals.first(address):
            self._log.warn("Server API: refused a request from {address}: {why}",
                           address=address, why=why)

    def _more_refused(self, address: str, count: int) -> None:
        self._log.warn("Server API: refused {count} more requests from {address} in the "
                       "last {seconds} s: no or wrong token, or no failures left",
                       count=count, address=address, seconds=REFUSALS_WINDOW)

    def _route(self, request: Asked) -> tuple[Route, str]:
        parts = request.parts
        methods: set[bytes] = set()
        for (method, pattern), handler in self._routes.items():
            if len(pattern) == len(parts) and all(
                    want is None or want == part for want, part in zip(pattern, parts,
                                                                       strict=True)):
                methods.add(method)
                if method == request.method:
                    return handler, pattern[0]  # type: ignore[return-value]  # a name first
        if methods:
            request.setHeader(b"allow", b", ".join(sorted(methods)))
            raise Problem(405, "Method Not Allowed",
                          f"Use {' or '.join(m.decode() for m in sorted(methods))}.",
                          "method_not_allowed")
        raise Problem(404, "Not Found", "No such API route.", "not_found")

    def _body(self, request: Asked, name: str) -> msgspec.Struct | None:
        decoder = _DECODERS.get(name) if request.method == b"POST" else None
        if decoder is None:
            return None
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            raise Problem(415, "Unsupported Media Type",
                          "Send the body as application/json.", "invalid_message")
        try:
            return decoder.decode(request.content.read())
        except (msgspec.DecodeError, RecursionError) as e:
            raise Problem(400, "Bad Request", str(e), "invalid_message") from None

    async def _publish(self, request: Asked, body: Publish) -> JsonObject:
        message = await self._admin.publish(body.room, body.content)
        return {"room": message.room, "messageId": message.message_id,
                "createTime": message.create_time}

    async def _send(self, request: Asked, body: Send) -> JsonObject:
        message, online = await self._admin.send(body.toUser, body.content)
        return {"toUser": message.recipient, "messageId": message.message_id,
                "createTime": message.create_time, "online": online}

    async def _disconnect(self, request: Asked, body: Disconnect) -> JsonObject:
        if body.banSeconds is not msgspec.UNSET:
            return await bans.ban_off(self._admin.bans, body)
        await self._admin.disconnect(body.userId, body.reason)
        return {"userId": body.userId, "disconnected": True}

    async def _rooms(self, request: Asked, body: None) -> JsonObject:
        limit, after = _page(request, self._admin.ROOMS_PAGE)
        rooms, total = await self._admin.rooms(limit, after)
        page: JsonObject = {"rooms": [{"room": room, "members": count} for room, count in rooms],
                "count": total}
        if len(rooms) == limit and rooms:
            page["next"] = rooms[-1][0]
        return page

    async def _members(self, request: Asked, body: None) -> JsonObject:
        room = request.parts[1]
        members, count, following = await self._admin.members(
            room, *_page(request, self._admin.MEMBERS_PAGE))
        page: JsonObject = {"room": room, "members": members, "count": count}
        if following:
            page["next"] = following
        return page

    async def _user(self, request: Asked, body: None) -> JsonObject:
        user = request.parts[1]
        where = await self._admin.user(user)
        return {"userId": user, "online": where.node is not None, "daemon": where.node,
                "rooms": where.rooms, "inCall": where.in_call}

    async def _stats(self, request: Asked, body: None) -> JsonObject:
        load = await self._admin.stats()
        return {"connections": sum(d["connections"] for d in load.daemons),
                "rooms": load.rooms, "poolSize": load.pool, "daemons": load.daemons}


def _page(request: Asked, largest: int) -> tuple[int, str]:
    """C{limit} (1 to C{largest}, default C{largest}) and C{after} of the query."""
    def one(name: str) -> str | None:
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


def _retry_after(wait: float) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"Retry-After", str(max(1, round(wait))).encode()),)


def _json(request: Asked, status: int, value: object) -> None:
    request.setResponseCode(status, HTTPStatus(status).phrase.encode())
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    request.write(json.dumps(value).encode())
    request.finish()


def _problem(request: Asked, problem: Problem) -> None:
    request.setResponseCode(problem.status, HTTPStatus(problem.status).phrase.encode())
    for name, value in problem.headers:
        request.setHeader(name, value)
    request.setHeader(b"content-type", PROBLEM)
    request.setHeader(b"cache-control", b"no-store")
    request.write(problem.body())
    request.finish()

