"""
The router: each decoded client message to its route (L{routes}), traced
as one transaction, and what comes back -- an answer, or an error --
rendered to the client. A bug in a route is reported and answered
C{unavailable}; the connection and the daemon go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from aleatoria.domain.refusals import Forbidden, Refused, Unavailable
from aleatoria.domain.rules import SHOWN, shown
from aleatoria.edge.limits import PerAddress, TooMany
from aleatoria.edge.routes import CODES, READS, ROUTES, Answer

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub
    from aleatoria.domain.ports import IConnection
    from aleatoria.edge.protocol import ClientProtocol
    from aleatoria.edge.render import Outlet
    from aleatoria.edge.wire import Envelope
    from aleatoria.ops.accounting import Accounting
    from aleatoria.ops.metrics import Metrics
    from aleatoria.ops.reporting import Reporter

_T = TypeVar("_T")

READ_RETRY_MS = 1000
"""The C{retryAfter} of a read refused as one too many under way: about what one takes at worst."""

FAULTS = {
    "unauthorized_room_send": "User attempted to send to room without membership",
    "webrtc_routing": "WebRTC message missing toUser field",
    "forbidden": None,
}
"""What a refusal that is a client's fault is reported as, by its operation (None: logged)."""


class Reads:
    """
    Store reads under way, per user and per client address, each up to
    its maximum: a client that asks faster than the store answers waits
    for its answers, instead of piling work on the store.
    """

    def __init__(self, per_user: int, per_address: int) -> None:
        self._users = PerAddress(per_user)
        self._addresses = PerAddress(per_address)

    def start(self, conn: IConnection) -> bool:
        """One more read of C{conn}'s; whether it may be."""
        try:
            self._users.count_in(conn.user_id)
        except TooMany:
            return False
        try:
            self._addresses.count_in(conn.address)
        except TooMany:
            self._users.count_out(conn.user_id)
            return False
        return True

    def done(self, conn: IConnection) -> None:
        self._users.count_out(conn.user_id)
        self._addresses.count_out(conn.address)


class Router:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param outlet: the L{aleatoria.edge.render.Outlet}, for answers and errors.
    @param reporter: the L{aleatoria.ops.reporting.Reporter} (traces).
    @param accounting: the L{aleatoria.ops.accounting.Accounting}, which
        puts the store work of a message in its trace.
    @param metrics: the L{aleatoria.ops.metrics.Metrics}.
    @param reads: the L{Reads} under way, bounded (by default 8 per user,
        64 per address).
    """

    _log = Logger()

    def __init__(self, hub: Hub, outlet: Outlet, reporter: Reporter, accounting: Accounting,
                 metrics: Metrics, reads: Reads | None = None) -> None:
        self._hub = hub
        self._outlet = outlet
        self._reporter = reporter
        self._accounting = accounting
        self._metrics = metrics
        self._reads = reads or Reads(8, 64)

    def received(self, conn: ClientProtocol, envelope: Envelope) -> None:
        kind = envelope.type
        if not self._hub.connections.current(conn):
            return
        route = ROUTES.get(kind)
        if route is None:
            self._metrics.received.labels("unknown").inc()
            conn.report.fault("Unknown message type", "unknown_message_type",
                              messageType=kind[:64])
            self._error(conn, "unknown_type", f"Unknown message type {kind!r}.")
            return
        self._metrics.received.labels(kind).inc()
        reading = kind in READS
        if reading and not self._reads.start(conn):
            self._too_many_reads(conn, envelope)
            return
        trace = self._reporter.trace(conn.report, kind)
        self._accounting.trace = trace
        try:
            answer = route(self._hub, conn, envelope)
        except Exception:
            answer = None
            self._failed(Failure(), conn, envelope)
        else:
            if isinstance(answer, Deferred):
                # Twisted takes None for no keywords, which its annotations do not say
                answer.addCallbacks(self._answer, self._failed, (conn, envelope),
                                    None, (conn, envelope))  # type: ignore[arg-type]
            elif answer is not None:
                self._answer(answer, conn, envelope)
        finally:
            self._accounting.trace = None
            trace.handled()
        if reading:
            if isinstance(answer, Deferred):
                answer.addBoth(self._read_done, conn)
            else:
                self._reads.done(conn)

    def _read_done(self, result: _T, conn: ClientProtocol) -> _T:
        self._reads.done(conn)
        return result

    def _too_many_reads(self, conn: ClientProtocol, envelope: Envelope) -> None:
        details: dict[str, object] = {"retryAfter": READ_RETRY_MS}
        if envelope.messageId:
            details["messageId"] = envelope.messageId
        self._error(conn, "rate_limited", "Too many requests under way; wait for their "
                    "answers.", details)

    def _answer(self, answer: Answer | None, conn: ClientProtocol, envelope: Envelope) -> None:
        if isinstance(answer, Answer) and self._hub.connections.current(conn):
            if envelope.messageId and not answer.message_id:
                answer = answer._replace(message_id=envelope.messageId)
            try:
                self._outlet.reply(conn, *answer)
            except Exception:
                self._failed(Failure(), conn, envelope)

    def _failed(self, failure: Failure, conn: ClientProtocol, envelope: Envelope) -> None:
        refused = failure.value
        if not isinstance(refused, Refused):
            conn.report.failed(
                self._log, failure, f"Handling {envelope.type} failed",
                component="hub", operation="handle_message", messageType=envelope.type,
            )
            refused = Unavailable("The server could not handle that message.")
        fault = refused.fault or ("forbidden" if isinstance(refused, Forbidden) else None)
        if fault is not None:
            where = f", room {shown(envelope.room)}" if envelope.room else ""
            conn.report.fault(
                FAULTS[fault], fault, log=self._log,
                line="{user} refused ({operation}{where}): {why}",
                fields={"user": conn.user_id, "operation": fault, "where": where,
                        "why": refused.sentence},
                messageType=envelope.type[:SHOWN], room=envelope.room[:SHOWN],
            )
        details = refused.details
        if envelope.messageId:
            details = {"messageId": envelope.messageId, **details}
        self._error(conn, CODES[type(refused)], refused.sentence, details)

    def _error(self, conn: ClientProtocol, code: str, sentence: str,
               details: Mapping[str, object] | None = None) -> None:
        if self._hub.connections.current(conn):
            self._outlet.error(conn, code, sentence, details)
