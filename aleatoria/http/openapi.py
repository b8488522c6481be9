"""
The server API's OpenAPI 3.1 document (C{/api/v1/openapi.json}): request
bodies described from the very msgspec structs that decode them, so the
document cannot drift from what is checked; answers and problems by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from aleatoria import __version__
from aleatoria.domain.rules import RoomName, UserId
from aleatoria.http.asked import JsonObject

_USER_ID = msgspec.json.schema(UserId)
_ROOM = msgspec.json.schema(RoomName)
_NEXT = {"type": "string", "description": "The `after` of the next page, when one follows."}


def _object(properties: JsonObject, required: list[str] | None = None,
            description: str | None = None) -> JsonObject:
    shape: JsonObject = {"type": "object", "properties": properties,
             "required": sorted(properties) if required is None else required}
    if description:
        shape["description"] = description
    return shape


_ANSWERS = {
    "Published": _object({"room": _ROOM, "messageId": {"type": "string"},
                          "createTime": {"type": "string", "format": "date-time"}}),
    "Sent": _object({"toUser": _USER_ID, "messageId": {"type": "string"},
                     "createTime": {"type": "string", "format": "date-time"},
                     "online": {"type": "boolean"}}),
    "Disconnected": _object({"userId": _USER_ID, "disconnected": {"type": "boolean"},
                             "ban": {"$ref": "#/components/schemas/Ban"}},
                            required=["userId", "disconnected"]),
    "Rooms": _object({
        "rooms": {"type": "array", "items": _object({
            "room": _ROOM, "members": {"type": "integer", "minimum": 0}})},
        "count": {"type": "integer", "minimum": 0}, "next": _NEXT,
    }, required=["rooms", "count"]),
    "Members": _object({"room": _ROOM, "members": {"type": "array", "items": _USER_ID},
                        "count": {"type": "integer", "minimum": 0}, "next": _NEXT},
                       required=["room", "members", "count"]),
    "User": _object({"userId": _USER_ID, "online": {"type": "boolean"},
                     "daemon": {"type": ["string", "null"]},
                     "rooms": {"type": "array", "items": _ROOM},
                     "inCall": {"type": "boolean"}}),
    "Stats": _object({
        "connections": {"type": "integer", "minimum": 0},
        "rooms": {"type": "integer", "minimum": 0},
        "poolSize": {"type": "integer", "minimum": 0},
        "daemons": {"type": "array", "items": _object({
            "node": {"type": "string"}, "connections": {"type": "integer", "minimum": 0},
            "rooms": {"type": "integer", "minimum": 0}})},
    }),
    "Report": _object({
        "reportId": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"},
        "reason": {"enum": ["spam", "nudity", "minor", "harassment", "other"]},
        "details": {"type": "string", "maxLength": 500},
        "reporter": {"$ref": "#/components/schemas/Party"},
        "reported": {"$ref": "#/components/schemas/Party"},
        "pairedAt": {"type": ["string", "null"], "format": "date-time",
                     "description": "When their current or most recent match began; null "
                                    "if they were not matched lately."},
        "pairedSeconds": {"type": ["number", "null"], "description": "How long it lasted."},
        "sharedInterests": {"type": "array", "items": {"type": "string"}},
        "messages": {"type": "array", "maxItems": 50, "items": _object({
            "fromUser": _USER_ID, "toUser": _USER_ID, "content": {"type": "string"},
            "messageId": {"type": "string"},
            "createTime": {"type": "string", "format": "date-time"}}),
            "description": "The last direct messages between the two since that match "
                           "began (their last ones, if not matched lately), oldest first."},
    }, description="A report and the evidence the server had: media never passes "
                   "through it."),
    "Party": _object({"userId": _USER_ID, "address": {
        "type": ["string", "null"], "description": "The client address it last connected "
                                                   "from, as it is counted and logged."}}),
    "Reports": _object({"reports": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Report"}},
                        "next": _NEXT}, required=["reports"]),
    "Deleted": _object({"reportId": {"type": "string"}, "deleted": {"type": "boolean"}}),
    "Problem": _object({
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "description": "The same codes as the WebSocket's errors, "
                 "and unauthorized, rate_limited, not_found, method_not_allowed, internal."},
    }, required=["type", "title", "status", "detail", "code"],
        description="RFC 9457 problem details."),
}

_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
_AFTER = {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}}
_LIMIT_100 = {**_LIMIT, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
_REPORT = {"name": "reportId", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}


def _problem(*statuses: int) -> JsonObject:
    return {str(status): {"description": "A problem.", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for status in statuses}


def _operation(summary: str, answer: str, *statuses: int, body: str | None = None,
               parameters: Iterable[JsonObject] = (), status: int = 200) -> JsonObject:
    operation: JsonObject = {
        "summary": summary,
        "responses": {
            str(status): {"description": "Done.", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{answer}"}}}},
            **_problem(401, 429, *statuses),
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        operation["responses"].update(_problem(400, 413, 415))
    if parameters:
        operation["parameters"] = list(parameters)
    return operation


def document(bodies: Mapping[str, type],
             answers: Mapping[str, JsonObject] | None = None,
             paths: Mapping[str, Mapping[str, JsonObject]] | None = None) -> JsonObject:
    """
    The OpenAPI document, C{bodies} being the request structs by route
    name; C{answers} more answer schemas by name, C{paths} more operations
    by path and method, each as the keywords of an operation
    (C{summary}, C{answer}, C{statuses}, C{body}, C{parameters}, C{status}).
    """
    _, schemas = msgspec.json.schema_components(list(bodies.values()),
                                                ref_template="#/components/schemas/{name}")
    schemas.update(_ANSWERS)
    schemas.update(answers or {})
    more = {path: {method: _operation(spec["summary"], spec["answer"], *spec["statuses"],
                                      **{k: v for k, v in spec.items()
                                         if k in ("body", "parameters", "status")})
                   for method, spec in operations.items()}
            for path, operations in (paths or {}).items()}
    room = {"name": "room", "in": "path", "required": True, "schema": _ROOM}
    user = {"name": "userId", "in": "path", "required": True, "schema": _USER_ID}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Aleatoria server API", "version": __version__,
                 "description": "What a product's backend asks of Aleatoria: see "
                                "docs/reference/http-api.rst."},
        "paths": {
            "/api/v1/publish": {"post": _operation(
                "Post a message from system to a room's members, on every daemon; kept in "
                "its history.", "Published", 403, 503, body="Publish")},
            "/api/v1/send": {"post": _operation(
                "Write to a user as system; kept in their conversation with system.",
                "Sent", 403, 503, body="Send")},
            "/api/v1/disconnect": {"post": _operation(
                "Close a user's connection wherever it is (close code 4003); with "
                "banSeconds, bar it too (and answer 200 even if it was offline).",
                "Disconnected", 404, 503, body="Disconnect")},
            "/api/v1/rooms": {"get": _operation(
                "The rooms with members, on every daemon, by name.", "Rooms", 400, 503,
                parameters=(_LIMIT, _AFTER))},
            "/api/v1/rooms/{room}/members": {"get": _operation(
                "The members of a room, on every daemon.", "Members", 400, 503,
                parameters=(room, _LIMIT, _AFTER))},
            "/api/v1/users/{userId}": {"get": _operation(
                "Whether a user is online, where, in which rooms, in a call.", "User",
                400, 503, parameters=(user,))},
            "/api/v1/reports": {"get": _operation(
                "The reports users filed, newest first, on every daemon.", "Reports", 400,
                503, parameters=(_LIMIT_100, _AFTER))},
            "/api/v1/reports/{reportId}": {
                "get": _operation("One report and its evidence.", "Report", 404, 503,
                                  parameters=(_REPORT,)),
                "delete": _operation("Delete a report (handled: gone).", "Deleted", 404, 503,
                                     parameters=(_REPORT,))},
            "/api/v1/stats": {"get": _operation(
                "Connections, rooms and the pool, in all and per daemon.", "Stats", 503)},
            **more,
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                          "description": "ALEATORIA_API_TOKEN"}},
        },
        "security": [{"token": []}],
    }
