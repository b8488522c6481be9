"""
Reports: a user tells the operator about another -- why, in a word and
a few lines -- and the server keeps, beside that word, the evidence it
has. Media never passes through the server: what it has is who the two
are and where they connected from, when they were paired and for how
long, the interests they shared, and the last messages they wrote each
other since that match began. A report also blocks the reported user
(L{aleatoria.domain.safety}), ending their call.

The operator reads, and deletes, reports through the server API.
"""

import uuid
from typing import TYPE_CHECKING

import msgspec
from twisted.internet.defer import Deferred

from aleatoria.domain.clock import format_ns
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Invalid, RateLimited
from aleatoria.domain.safety_facts import Blocked, Reported

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

REASONS = ("spam", "nudity", "minor", "harassment", "other")
"""Why a user may report another."""

MAX_DETAILS = 500
"""Characters of the reporter's own words a report keeps."""

EVIDENCE_MESSAGES = 50
"""Messages between the two a report keeps, the most recent."""

PAGE = 100
"""The most reports one page of the server API holds."""


class Message(msgspec.Struct, frozen=True):
    """A direct message between the two, as the report keeps it."""

    sender: str
    recipient: str
    content: str
    message_id: str
    create_time: str


class Report(msgspec.Struct, frozen=True):
    """
    One report and its evidence. Times are RFC 3339, as createTimes;
    C{paired_at} and C{paired_seconds} are C{None} when the two were not
    matched lately (the messages are then their last ones, whenever).
    """

    id: str
    created_at: str
    reporter: str
    reported: str
    reason: str
    details: str
    reporter_address: str | None
    reported_address: str | None
    paired_at: str | None
    paired_seconds: float | None
    shared_interests: list[str]
    messages: list[Message]


def place_of(report: Report) -> str:
    """
    Where a report stands among the others: text that sorts as they were
    filed (and is the C{after} of the page that follows it).
    """
    return f"{report.created_at}|{report.id}"


class Reports:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param per_hour: reports one user may file an hour.
    @param ttl: seconds a report is kept.
    """

    def __init__(self, hub: "Hub", per_hour: int, ttl: int) -> None:
        self._hub = hub
        self._per_hour = per_hour
        self._ttl = ttl

    def report(self, conn: IConnection, other: str, reason: str,
               details: str = "") -> Deferred[str]:
        """
        C{conn}'s user reports C{other}: block it, end their call, keep the
        evidence; fire with the report's id.

        @raise RateLimited: the user filed as many reports as it may this hour.
        """
        hub, user = self._hub, conn.user_id
        hub.safety.check_other(user, other, "report")
        if reason not in REASONS:
            raise Invalid(f"reason is one of {', '.join(REASONS)}.")
        if len(details) > MAX_DETAILS:
            raise Invalid(f"details has at most {MAX_DETAILS} characters.")
        d = Deferred.fromCoroutine(self._file(conn, other, reason, details))
        return hub.work.watch(d, "report", user, asked=True, timed=False)

    async def _file(self, conn: IConnection, other: str, reason: str, details: str) -> str:
        hub, user, work = self._hub, conn.user_id, self._hub.work
        wait = await work.timed(hub.reports.count_in(user, self._per_hour), "report_quota")
        if wait:
            raise RateLimited("You have filed as many reports as you may this hour.",
                              retryAfter=int(wait * 1000))
        blocking = await work.timed(hub.blocks.block(user, other), "block")
        hub.tell(Blocked(user, other, blocking.ended))
        if blocking.ended:
            hub.safety.end_call(user, other, "reported")
        report = await self._evidence(conn, other, reason, details)
        await work.timed(hub.reports.file(report, self._ttl), "file_report")
        hub.tell(Reported(user, other, reason, report.id, report))
        return report.id

    async def _evidence(self, conn: IConnection, other: str, reason: str, details: str) -> Report:
        """What the server has on the two, read once the block ended their call."""
        hub, user, work = self._hub, conn.user_id, self._hub.work
        meeting = await work.timed(hub.matchmaking.last_match(user), "last_match")
        if meeting is not None and meeting.peer != other:
            meeting = None
        there = hub.connections.get(other)
        address = there.address if there is not None else await work.timed(
            hub.sessions.address_of(other), "address_of")
        history = await work.timed(
            hub.streams.direct_history(user, other, EVIDENCE_MESSAGES), "direct_messages")
        now_ns = hub.clock.next_ns()
        now_ms = now_ns // 1_000_000
        paired_at = seconds = None
        if meeting is not None:
            paired_at = format_ns(meeting.started * 1_000_000)
            seconds = ((meeting.ended or now_ms) - meeting.started) / 1000
            history = [m for m in history if m.create_time >= paired_at]
        return Report(
            id=uuid.uuid4().hex, created_at=format_ns(now_ns), reporter=user,
            reported=other, reason=reason, details=details, reporter_address=conn.address,
            reported_address=address, paired_at=paired_at, paired_seconds=seconds,
            shared_interests=list(meeting.common) if meeting is not None else [],
            messages=[Message(m.sender, m.recipient, m.content, m.message_id, m.create_time)
                      for m in history])

    # For the server API

    def get(self, report_id: str) -> Deferred[Report | None]:
        hub = self._hub
        return hub.work.watch(hub.reports.get(report_id), "get_report", asked=True)

    def page(self, limit: int, after: str = "") -> Deferred[list[Report]]:
        """
        Up to C{limit} reports filed before C{after}, newest first: at most
        a L{PAGE} and one (the one more says whether another page follows).
        """
        hub = self._hub
        return hub.work.watch(hub.reports.page(min(limit, PAGE + 1), after), "reports",
                              asked=True)

    def delete(self, report_id: str) -> Deferred[bool]:
        hub = self._hub
        return hub.work.watch(hub.reports.delete(report_id), "delete_report", asked=True)
