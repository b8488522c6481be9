"""What the routes of the server API take and give, as type checkers see them."""

from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from twisted.web.server import Request

JsonObject = dict[str, Any]
"""A JSON object the API writes (or a document it builds): its values are any JSON."""


class Asked(Request):
    """
    A request of the server API once routed: the parts of its path, and
    whether its head was screened (L{aleatoria.http.api.ServerAPI.screen}).
    Never made: twisted.web makes the requests, the API sets these.
    """

    parts: list[str]
    admitted: bool
    # what a request twisted.web hands a resource has by then (None before it is parsed)
    args: dict[bytes, list[bytes]]  # type: ignore[assignment]
    postpath: list[bytes]
    content: BinaryIO  # type: ignore[assignment]


Route = Callable[[Asked, Any], Awaitable[JsonObject]]
"""A route's handler: the request, and its body as the route's struct decodes it (or C{None})."""

Routes = dict[tuple[bytes, tuple[str | None, ...]], Route]
"""Routes by method and path pattern (C{None}: any part there)."""
