"""
The server API's bans (C{/api/v1/bans}): set one on a user or on a range
of client addresses for a time, list those in force, lift one -- on
every daemon (L{aleatoria.domain.bans}). The routes, their request body
and their part of the OpenAPI document; L{aleatoria.http.api} serves them.
"""

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from aleatoria.domain.bans import MAX_REASON, MAX_SECONDS
from aleatoria.domain.rules import UserId
from aleatoria.http.problems import Problem

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


def ban_json(ban):
    """A L{aleatoria.domain.events.Ban} as the API shows it."""
    shown = {"id": ban.id}
    if ban.user:
        shown["userId"] = ban.user
    else:
        shown["address"] = ban.network
    shown.update(reason=ban.reason, createdAt=_time(ban.created_at),
                 expiresAt=_time(ban.expires_at))
    return shown


def _time(seconds):
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def routes(bans):
    """The routes of C{bans} (a L{aleatoria.domain.bans.Bans}), as the server API takes them."""

    async def create(request, body):
        ban = await bans.ban(user=_given(body.userId), address=_given(body.address),
                             seconds=body.seconds, reason=body.reason)
        return Created(ban_json(ban))

    async def listed(request, body):
        found = await bans.all()
        return {"bans": [ban_json(ban) for ban in found], "count": len(found)}

    async def lift(request, body):
        ban = await bans.lift(request.parts[1])
        if ban is None:
            raise Problem(404, "Not Found", "No ban of that id is in force.", "not_found")
        return ban_json(ban)

    return {(b"POST", ("bans",)): create, (b"GET", ("bans",)): listed,
            (b"DELETE", ("bans", None)): lift}


async def ban_off(bans, body):
    """
    The disconnect route with C{banSeconds}: bar the user that long and
    close its connections wherever they are.
    """
    ban, online = await bans.ban_off(body.userId, body.banSeconds, body.reason)
    return {"userId": body.userId, "disconnected": online, "ban": ban_json(ban)}


def _given(value):
    return None if value is UNSET else value


BODIES = {"bans": NewBan}
"""The request bodies, by route name."""

_TIME = {"type": "string", "format": "date-time"}

ANSWERS = {
    "Ban": {"type": "object", "required": ["id", "reason", "createdAt", "expiresAt"],
            "properties": {
                "id": {"type": "string"}, "userId": msgspec.json.schema(UserId),
                "address": {"type": "string", "description": "The range, as a CIDR."},
                "reason": {"type": "string"}, "createdAt": _TIME, "expiresAt": _TIME}},
    "Bans": {"type": "object", "required": ["bans", "count"], "properties": {
        "bans": {"type": "array", "items": {"$ref": "#/components/schemas/Ban"}},
        "count": {"type": "integer", "minimum": 0}}},
}
"""The answers' schemas, by name."""

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS = {
    "/api/v1/bans": {
        "post": {"summary": "Bar a user, or an address or range, for a time, on every daemon: "
                            "its connections close (4003 banned), its handshakes are refused "
                            "(403 banned).",
                 "answer": "Ban", "statuses": (503,), "body": "NewBan", "status": 201},
        "get": {"summary": "Every ban in force, the newest first.", "answer": "Bans",
                "statuses": (503,)},
    },
    "/api/v1/bans/{id}": {
        "delete": {"summary": "Lift a ban, on every daemon.", "answer": "Ban",
                   "statuses": (404, 503), "parameters": (_ID,)},
    },
}
"""The operations, by path and method, as L{aleatoria.http.openapi.document} takes them."""
