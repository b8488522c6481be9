"""
How a connection is held to its limits, and what happens past them: the
user's message rate (an error, then close 1008; requests worth several
messages charge them), frames of every kind (close 1008), and the queue
waiting for a client (a drop; a sender may write as the client reads
instead). Mixed into the protocol; the arithmetic is L{aleatoria.limits}'.
"""

import math

from twisted.internet.defer import succeed
from twisted.internet.task import LoopingCall

from aleatoria.domain.limits import FRAMES_PER_MESSAGE, MAX_FRAGMENTS, Backlog, TokenBucket
from aleatoria.edge.frames import queued


class Conduct:
    """
    Mixed into L{aleatoria.protocol.ClientProtocol}: it uses the factory's
    C{messages}, C{rate}, C{outbound} and C{clock}, and the protocol's log,
    report and C{_answer}.
    """

    def _meter(self):
        """Start metering frames (once the handshake is accepted)."""
        rate, burst = self.factory.rate
        self._frames = TokenBucket(rate * FRAMES_PER_MESSAGE, burst * FRAMES_PER_MESSAGE,
                                   self.factory.clock.seconds)
        self._fragments = 0
        self._refused = 0

    def _queue(self):
        """Watch what waits for the client (once the connection is open); the backlog."""
        messages, size, stall = self.factory.outbound
        self._backlog = Backlog(messages, size, stall, lambda: queued(self.transport),
                                self.factory.clock.seconds)
        return self._backlog

    def rested_in(self):
        """Seconds until the user's message budget is full again."""
        return self.factory.messages.rested_in(self.user_id)

    def rest_in(self, seconds):
        self.factory.messages.rest_in(self.user_id, seconds)

    def charge(self, messages):
        """
        The request being handled costs C{messages} more of the user's rate
        and of its address's, into debt if need be (at most a burst of it).
        """
        if messages > 0:
            self.factory.messages.spend(self.user_id, messages)
            self.factory.address_messages.spend(self._address, messages)

    def writable(self):
        """
        Fire once the transport takes more (at once if it does now), for a
        sender that writes only as the client reads. While it waits, a
        client whose queue has not shrunk for the stall time is dropped (and
        it fires then too).
        """
        backlog = self._backlog
        if not backlog.paused or self.state != self.STATE_OPEN:
            return succeed(None)
        watch = LoopingCall(self._drop_if_stalled)
        watch.clock = self.factory.clock
        watch.start(self.factory.outbound[2], now=False)
        return backlog.resumed().addBoth(_stopping, watch)

    def _drop_if_stalled(self):
        if self.state == self.STATE_OPEN and self._backlog.stalled():
            self._evict()

    def holding(self, count):
        """
        C{count} messages are held back for the client behind a replay:
        they wait as its queue does, so past the outbound message limit the
        client is dropped as one that is not reading.
        """
        if count > self.factory.outbound[0] and self.state == self.STATE_OPEN:
            self._evict(count)

    def _may_send(self):
        """Whether the user may send one more message now; if not, it is told."""
        wait = (self.factory.messages.take(self.user_id)
                or self.factory.address_messages.take(self._address))
        if wait:
            self._too_fast(wait)
            return False
        self._refused = 0
        return True

    def frame_refused(self, opcode):
        """
        Meter each frame, whatever its kind, against the connection's frame
        budget, and each message's fragments; the reason to close, if any.
        """
        reason = None
        if self._frames.take():
            reason = "too many frames"
        elif opcode == 0:
            self._fragments += 1
            if self._fragments > MAX_FRAGMENTS:
                reason = "message in too many fragments"
        elif opcode < 8:
            self._fragments = 1
        if reason is not None and self.state == self.STATE_OPEN:
            self.report.fault(
                "Client flooded frames", "frame_limit", log=self._log,
                line="Closing {user} from {peer}: {reason}",
                fields={"user": self.user_id, "peer": self.peer, "reason": reason},
                reason=reason,
            )
        return reason

    def _too_fast(self, wait):
        """
        Drop a message over the rate limit and say when to retry; as many
        refusals in a row as the burst allows close the connection (1008).
        """
        self._refused += 1
        if self._refused <= self.factory.rate[1]:
            self._answer("error", "rate_limited", {
                "error": "Too many messages; slow down.", "retryAfter": math.ceil(wait * 1000),
            })
            return
        self.report.fault(
            "Client ignored the rate limit", "rate_limit", log=self._log,
            line="Closing {user} from {peer}: rate limit ignored",
            fields={"user": self.user_id, "peer": self.peer},
        )
        self.close(1008, "rate limit exceeded")

    def _evict(self, held=0):
        """
        The client stopped reading and its backlog is full (or C{held}
        messages wait behind a replay): drop it, so it costs no more memory
        and nobody waits for it. A close frame could not get through the
        full buffer, so the connection is aborted.
        """
        backlog = self._backlog
        messages = backlog.messages + held
        self.report.fault(
            "Slow client disconnected: outbound buffer full", "slow_consumer", log=self._log,
            line="Dropping {user} from {peer}: not reading ({messages} messages, "
                 "{size} bytes waiting)",
            fields={"user": self.user_id, "peer": self.peer, "messages": messages,
                    "size": backlog.bytes},
            extra={"messages": messages, "bytes": backlog.bytes},
        )
        self.dropConnection(abort=True)


def _stopping(result, watch):
    watch.stop()
    return result
