"""
The server API's bans (C{/api/v1/bans}): set one on a user or on a range
of client addresses for a time, list those in force, lift one -- on
every daemon (L{aleatoria.domain.bans}). The routes, their request body
and their part of the OpenAPI document; L{aleatoria.http.api} serves them.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from aleatoria.domain.bans import MAX_REASON, MAX_SECONDS, Bans
from aleatoria.domain.events import Ban
from aleatoria.domain.rules import UserId
from aleatoria.http.asked import Asked, JsonObject, Routes
from aleatoria.http.problems import Problem

if TYPE_CHECKING:
    from aleatoria.http.api import Disconnect

_T = TypeVar("_T")

Seconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_SECONDS, description=(
    "How long the ban lasts, in seconds."))]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description=(
    "An IPv4 or IPv6 address, or a CIDR range: 203.0.113.7, 203.0.113.0/24, 2001:db8::/32."))]
BanReason = Annotated[str, msgspec.Meta(max_length=MAX_REASON, description=(
    "The operator's note, kept with the ban; the banned are told only 'banned'."))]


class NewBan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bar a user, or the client addresses of a range, for a time: give userId or address."""

    seconds: Seconds
    userId: UserId | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    reason: BanReason = ""


class Created(dict):
    """An answer that made what it describes: 201."""


def ban_json(ban: Ban) -> JsonObject:
    """A L{aleatoria.domain.events.Ban} as the API shows it."""
    shown: JsonObject = {"id": ban.id}
    if ban.user:
        shown["userId"] = ban.user
    else:
        shown["address"] = ban.network
    shown.update(reason=ban.reason, createdAt=_time(ban.created_at),
                 expiresAt=_time(ban.expires_at))
    return shown


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def routes(bans: Bans) -> Routes:
    """The routes of C{bans} (a L{aleatoria.domain.bans.Bans}), as the server API takes them."""

    async def create(request: Asked, body: NewBan) -> JsonObject:
        ban = await bans.ban(user=_given(body.userId), address=_given(body.address),
                             seconds=body.seconds, reason=body.reason)
        return Created(ban_json(ban))

    async def listed(request: Asked, body: None) -> JsonObject:
        limit, after = _page(request)
        found = await bans.all()
        older = [ban for ban in found if ban.id < after] if after else found
        page: JsonObject = {"bans": [ban_json(ban) for ban in older[:limit]], "count": len(found)}
        if len(older) > limit:
            page["next"] = older[limit - 1].id
        return page

    async def lift(request: Asked, body: None) -> JsonObject:
        ban = await bans.lift(request.parts[1])
        if ban is None:
            raise Problem(404, "Not Found", "No ban of that id is in force.", "not_found")
        return ban_json(ban)

    return {(b"POST", ("bans",)): create, (b"GET", ("bans",)): listed,
            (b"DELETE", ("bans", None)): lift}


async def ban_off(bans: Bans, body: "Disconnect") -> JsonObject:
    """
    The disconnect route with C{banSeconds}: bar the user that long and
    close its connections wherever they are.
    """
    # the route of a disconnect that gives banSeconds
    ban, online = await bans.ban_off(body.userId, body.banSeconds,  # type: ignore[arg-type]
                                     body.reason)
    return {"userId": body.userId, "disconnected": online, "ban": ban_json(ban)}


PAGE = 1000
"""The most bans one page lists."""


def _page(request: Asked) -> tuple[int, str]:
    """C{limit} (1 to L{PAGE}, default L{PAGE}) and C{after} (a ban's id) of the query."""
    def one(name: str) -> str:
        values = request.args.get(name.encode())
        return values[0].decode("utf-8", "replace") if values else ""

    try:
        limit = int(one("limit") or PAGE)
    except ValueError:
        limit = 0
    if not 1 <= limit <= PAGE:
        raise Problem(400, "Bad Request", f"limit is a whole number from 1 to {PAGE}.",
                      "invalid_message")
    return limit, one("after")


def _given(value: _T | UnsetType) -> _T | None:
    return None if value is UNSET else value


BODIES = {"bans": NewBan}
"""The request bodies, by route name."""

_TIME = {"type": "string", "format": "date-time"}

ANSWERS: dict[str, JsonObject] = {
    "Ban": {"type": "object", "required": ["id", "reason", "createdAt", "expiresAt"],
            "properties": {
                "id": {"type": "string"}, "userId": msgspec.json.schema(UserId),
                "address": {"type": "string", "description": "The range, as a CIDR."},
                "reason": {"type": "string"}, "createdAt": _TIME, "expiresAt": _TIME}},
    "Bans": {"type": "object", "required": ["bans", "count"], "properties": {
        "bans": {"type": "array", "items": {"$ref": "#/components/schemas/Ban"}},
        "count": {"type": "integer", "minimum": 0, "description": "Bans in force, in all."},
        "next": {"type": "string", "description": "The after of the next page, if any."}}},
}
"""The answers' schemas, by name."""

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": PAGE}}
_AFTER = {"name": "after", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "The id of the last ban of the page before."}

PATHS: dict[str, dict[str, JsonObject]] = {
    "/api/v1/bans": {
        "post": {"summary": "Bar a user, or an address or range, for a time, on every daemon: "
                            "its connections close (4003 banned), its handshakes are refused "
                            "(403 banned).",
                 "answer": "Ban", "statuses": (503,), "body": "NewBan", "status": 201},
        "get": {"summary": "The bans in force, the newest first, paged.", "answer": "Bans",
                "statuses": (400, 503), "parameters": (_LIMIT, _AFTER)},
    },
    "/api/v1/bans/{id}": {
        "delete": {"summary": "Lift a ban, on every daemon.", "answer": "Ban",
                   "statuses": (404, 503), "parameters": (_ID,)},
    },
}
"""The operations, by path and method, as L{aleatoria.http.openapi.document} takes them."""
