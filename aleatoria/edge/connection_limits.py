"""
How one connection is held to its limits, and what happens past them: the
user's message rate (an error, then close 1008; requests worth several
messages charge them), frames of every kind (close 1008), and the queue
waiting for a client (a drop; a sender may write as the client reads
instead). The arithmetic is L{aleatoria.domain.limits}' and
L{aleatoria.edge.limits}'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from aleatoria.domain.limits import KeyedBuckets, TokenBucket
from aleatoria.edge.frames import queued
from aleatoria.edge.limits import FRAMES_PER_MESSAGE, MAX_FRAGMENTS, Backlog
from aleatoria.edge.wire import message_id_of

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime, ITransport

    from aleatoria.domain.limits import Seconds
    from aleatoria.edge.protocol import ClientProtocol

_T = TypeVar("_T")


@dataclass(frozen=True)
class Limits:
    """
    What every connection may cost: C{rate} messages a second in bursts of
    C{burst}, and at most C{outbound_messages} or C{outbound_bytes}
    waiting for a client that reads (dropped when it has not read for
    C{outbound_stall} seconds).
    """

    rate: float
    burst: int
    outbound_messages: int
    outbound_bytes: int
    outbound_stall: float


class Budgets:
    """
    The message budgets that outlive connections: each user's, whichever
    connection (or reconnection) spends it, and each client address's,
    whichever users spend it.
    """

    def __init__(self, limits: Limits, address_rate: float, address_burst: int,
                 seconds: Seconds) -> None:
        self.users = KeyedBuckets(limits.rate, limits.burst, seconds)
        self.addresses = KeyedBuckets(address_rate, address_burst, seconds)


class ConnectionLimits:
    """
    One connection's limits.

    @param protocol: the L{aleatoria.edge.protocol.ClientProtocol} held to them.
    @param limits: the L{Limits}.
    @param budgets: the L{Budgets} it spends.
    @param clock: the reactor.
    """

    _log = Logger()

    def __init__(self, protocol: ClientProtocol, limits: Limits, budgets: Budgets,
                 clock: IReactorTime) -> None:
        self._protocol = protocol
        self._limits = limits
        self._budgets = budgets
        self._clock = clock
        self._frames = TokenBucket(limits.rate * FRAMES_PER_MESSAGE,
                                   limits.burst * FRAMES_PER_MESSAGE, clock.seconds)
        self._fragments = 0
        self._refused = 0
        self.backlog: Backlog = None  # type: ignore[assignment]  # until open()

    def open(self, transport: ITransport) -> Backlog:
        """Watch what waits for the client (once the connection is open); the backlog."""
        limits = self._limits
        self.backlog = Backlog(limits.outbound_messages, limits.outbound_bytes,
                               limits.outbound_stall, lambda: queued(transport),
                               self._clock.seconds)
        return self.backlog

    # Messages

    def may_send(self, frame: bytes = b"") -> bool:
        """Whether the user may send one more message (C{frame}) now; if not, it is told."""
        protocol = self._protocol
        wait = (self._budgets.users.delay(protocol.user_id)
                or self._budgets.addresses.delay(protocol.address))
        if wait:
            self._too_fast(wait, frame)
            return False
        self._refused = 0
        return True

    def _too_fast(self, wait: float, frame: bytes) -> None:
        """
        Drop a message over the rate limit and say when to retry, naming its
        C{messageId} (a client's request hears it was dropped); as many
        refusals in a row as the burst allows close the connection (1008).
        """
        protocol = self._protocol
        self._refused += 1
        if self._refused <= self._limits.burst:
            details: dict[str, object] = {"retryAfter": math.ceil(wait * 1000)}
            message_id = message_id_of(frame)
            if message_id:
                details["messageId"] = message_id
            protocol.refuse("rate_limited", "Too many messages; slow down.", **details)
            return
        protocol.report.fault(
            "Client ignored the rate limit", "rate_limit", log=self._log,
            line="Closing {user} from {peer}: rate limit ignored",
            fields={"user": protocol.user_id, "peer": protocol.address},
        )
        protocol.close(1008, "rate limit exceeded")

    def charge(self, messages: int) -> None:
        """
        The request being handled costs C{messages} more of the user's rate
        and of its address's, into debt if need be (at most a burst of it).
        """
        if messages > 0:
            self._budgets.users.spend(self._protocol.user_id, messages)
            self._budgets.addresses.spend(self._protocol.address, messages)

    def budget_refills_in(self) -> float:
        return self._budgets.users.full_in(self._protocol.user_id)

    def spent_elsewhere(self, seconds: float) -> None:
        self._budgets.users.full_in_at_least(self._protocol.user_id, seconds)

    # Frames

    def frame_refused(self, opcode: int) -> str | None:
        """
        Meter each frame, whatever its kind, against the connection's frame
        budget, and each message's fragments; the reason to close, if any.
        """
        reason = None
        if self._frames.delay():
            reason = "too many frames"
        elif opcode == 0:
            self._fragments += 1
            if self._fragments > MAX_FRAGMENTS:
                reason = "message in too many fragments"
        elif opcode < 8:
            self._fragments = 1
        protocol = self._protocol
        if reason is not None and protocol.established:
            protocol.report.fault(
                "Client flooded frames", "frame_limit", log=self._log,
                line="Closing {user} from {peer}: {reason}",
                fields={"user": protocol.user_id, "peer": protocol.address, "reason": reason},
                reason=reason,
            )
        return reason

    # What waits for the client

    def admits(self, size: int) -> bool:
        """Whether one more frame of C{size} bytes may wait for the client; if not, dropped."""
        if self.backlog.admits(size):
            return True
        self._evict()
        return False

    def writable(self) -> Deferred[None]:
        """
        Fire once the transport takes more (at once if it does now), for a
        sender that writes only as the client reads. While it waits, a
        client whose queue has not shrunk for the stall time is dropped (and
        it fires then too).
        """
        backlog = self.backlog
        if backlog is None or not backlog.paused or not self._protocol.established:
            return succeed(None)
        watch = LoopingCall(self._drop_if_stalled)
        watch.clock = self._clock
        watch.start(self._limits.outbound_stall, now=False)
        return backlog.resumed().addBoth(_stopping, watch)

    def _drop_if_stalled(self) -> None:
        if self._protocol.established and self.backlog.stalled():
            self._evict()

    def holding(self, count: int) -> None:
        """
        C{count} messages are held back for the client behind a replay:
        they wait as its queue does, so past the outbound message limit the
        client is dropped as one that is not reading.
        """
        if count > self._limits.outbound_messages and self._protocol.established:
            self._evict(count)

    def _evict(self, held: int = 0) -> None:
        """
        The client stopped reading and its backlog is full (or C{held}
        messages wait behind a replay): drop it, so it costs no more memory
        and nobody waits for it. A close frame could not get through the
        full buffer, so the connection is aborted.
        """
        protocol, backlog = self._protocol, self.backlog
        messages = backlog.messages + held
        protocol.report.fault(
            "Slow client disconnected: outbound buffer full", "slow_consumer", log=self._log,
            line="Dropping {user} from {peer}: not reading ({messages} messages, "
                 "{size} bytes waiting)",
            fields={"user": protocol.user_id, "peer": protocol.address, "messages": messages,
                    "size": backlog.bytes},
            extra={"messages": messages, "bytes": backlog.bytes},
        )
        protocol.dropConnection(abort=True)


def _stopping(result: _T, watch: LoopingCall) -> _T:
    watch.stop()
    return result
