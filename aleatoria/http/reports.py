"""
The server API's reports (C{/api/v1/reports}): the newest first, paged;
one by id; deleted once handled. Handed to L{aleatoria.http.api.ServerAPI}
as routes of its own; described in L{aleatoria.http.openapi}.
"""

from __future__ import annotations

import re

from aleatoria.domain.reports import PAGE, Reports, place_of
from aleatoria.http.api import Problem
from aleatoria.http.asked import Asked, JsonObject, Routes
from aleatoria.ops.report_view import rendered

_ID = re.compile(r"^[0-9a-f]{32}$")


class ReportsAPI:
    """@param reported: the hub's L{aleatoria.domain.reports.Reports}."""

    def __init__(self, reported: Reports) -> None:
        self._reported = reported

    def routes(self) -> Routes:
        """The routes, as L{aleatoria.http.api.ServerAPI} takes them."""
        return {(b"GET", ("reports",)): self._page,
                (b"GET", ("reports", None)): self._get,
                (b"DELETE", ("reports", None)): self._delete}

    async def _page(self, request: Asked, body: None) -> JsonObject:
        limit, after = _page(request)
        reports = await self._reported.page(limit + 1, after)  # one more: is there a next?
        page: JsonObject = {"reports": [rendered(report) for report in reports[:limit]]}
        if len(reports) > limit:
            page["next"] = place_of(reports[limit - 1])
        return page

    async def _get(self, request: Asked, body: None) -> JsonObject:
        report = await self._reported.get(_id(request))
        if report is None:
            raise _gone()
        return rendered(report)

    async def _delete(self, request: Asked, body: None) -> JsonObject:
        report_id = _id(request)
        if not await self._reported.delete(report_id):
            raise _gone()
        return {"reportId": report_id, "deleted": True}


def _id(request: Asked) -> str:
    report_id = request.parts[1]
    if not _ID.match(report_id):
        raise _gone()
    return report_id


def _gone() -> Problem:
    return Problem(404, "Not Found", "No such report (never filed, expired or deleted).",
                   "not_found")


_PLACE = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z\|[0-9a-f]{32}")
"""What L{place_of} makes: a report's createTime and id."""


def _page(request: Asked) -> tuple[int, str]:
    """C{limit} (1 to 100, default 100) and C{after} of the query."""
    def one(name: str) -> str | None:
        values = request.args.get(name.encode())
        return values[0].decode("utf-8", "replace") if values else None

    limit = one("limit")
    count = PAGE if limit is None else int(limit) if limit.isdigit() else 0
    if not 1 <= count <= PAGE:
        raise Problem(400, "Bad Request", f"limit is a whole number from 1 to {PAGE}.",
                      "invalid_message")
    after = one("after") or ""
    if after and _PLACE.fullmatch(after) is None:
        raise Problem(400, "Bad Request", "after is the next of the page before.",
                      "invalid_message")
    return count, after
