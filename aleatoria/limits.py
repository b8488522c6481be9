"""
What any one client may cost: messages a second (per user, across its
reconnects), connections and connection attempts per address, and what
may wait for a client that stopped reading. Plain values and
counters, no I/O: the protocol and the reporter apply them.
"""

import collections

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

FRAMES_PER_MESSAGE = 8
"""
Frames of every kind (continuations, pings, pongs) a connection may send
for each message its rate allows: room for fragments and keepalive, none
for a flood of frames that are not messages.
"""

MAX_FRAGMENTS = 32
"""Frames one message may come in; browsers send one."""


class TokenBucket:
    """C{rate} tokens a second, at most C{burst} saved up; C{seconds} is the clock."""

    def __init__(self, rate, burst, seconds):
        self._rate = rate
        self._burst = burst
        self._seconds = seconds
        self._tokens = float(burst)
        self._last = seconds()

    def take(self):
        """Take a token: 0 if there was one, else the seconds until there is."""
        now = self._seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0
        return (1 - self._tokens) / self._rate

    def spend(self, tokens):
        """
        Take C{tokens} at once, into debt if need be -- but never more than
        a burst of debt: what a request worth several messages costs.
        """
        now = self._seconds()
        tokens_now = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._tokens = max(-self._burst, tokens_now - tokens)
        self._last = now

    def rested_in(self, now):
        """Seconds from C{now} until the bucket is full."""
        tokens = self._tokens + (now - self._last) * self._rate
        return max(0.0, (self._burst - tokens) / self._rate)

    def rest_in(self, now, seconds):
        """Spend what keeps the bucket from being full before C{now + seconds}."""
        self._tokens = min(self._tokens + (now - self._last) * self._rate,
                           self._burst - seconds * self._rate)
        self._last = now

    def full(self, now):
        """Whether the bucket is (or would be by C{now}) full: as good as new."""
        return self._tokens + (now - self._last) * self._rate >= self._burst


class KeyedBuckets:
    """
    A L{TokenBucket} per key -- a user, a client address -- that outlives
    the connections drawing on it: reconnecting does not refill it. A
    bucket is forgotten once it would be full again, which loses nothing,
    so memory follows only the keys active in the last C{burst / rate}
    seconds.
    """

    def __init__(self, rate, burst, seconds):
        self._rate = rate
        self._burst = burst
        self._seconds = seconds
        self._buckets = {}
        self._refill = burst / rate
        self._swept = seconds()

    def take(self, key):
        """Take a token of C{key}'s: 0 if there was one, else the seconds until there is."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._sweep()
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        return bucket.take()

    def spend(self, key, tokens):
        """Take C{tokens} of C{key}'s at once (see L{TokenBucket.spend})."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._sweep()
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        bucket.spend(tokens)

    def __len__(self):
        return len(self._buckets)

    def rested_in(self, key):
        """Seconds until C{key}'s bucket is full again (0 if it is, or there is none)."""
        bucket = self._buckets.get(key)
        return bucket.rested_in(self._seconds()) if bucket is not None else 0

    def rest_in(self, key, seconds):
        """Have C{key}'s bucket full again no sooner than in C{seconds}."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        bucket.rest_in(self._seconds(), seconds)

    def _sweep(self):
        now = self._seconds()
        if now - self._swept >= self._refill:
            self._swept = now
            self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}


_HOUR = 3600


class Quotas:
    """
    What one user may leave behind, per hour: messages stored (in room
    history or for a direct message's recipient), and new direct-message
    conversations. Each is a L{KeyedBuckets} of C{n} an hour that may all
    be spent at once. Counted on each daemon.
    """

    def __init__(self, stored_per_hour, conversations_per_hour, seconds):
        self._stored = KeyedBuckets(stored_per_hour / _HOUR, stored_per_hour, seconds)
        self._conversations = KeyedBuckets(
            conversations_per_hour / _HOUR, conversations_per_hour, seconds)
        self._recent = {}
        self._seconds = seconds
        self._swept = seconds()

    def may_store(self, user):
        """Spend one stored message of C{user}'s; whether there was one."""
        return not self._stored.take(user)

    def may_write_to(self, user, peer):
        """
        Whether C{user} may message C{peer}: always within a conversation
        of the last hour, else at the cost of a new one.
        """
        now = self._seconds()
        started = self._recent.get((user, peer))
        if started is not None and now - started < _HOUR:
            return True
        if self._conversations.take(user):
            return False
        self._recent[(user, peer)] = now
        if now - self._swept >= _HOUR:
            self._swept = now
            self._recent = {k: t for k, t in self._recent.items() if now - t < _HOUR}
        return True


class Summary:
    """
    Repeated events of one key (refusals from one address) told once, then
    counted: the first is passed on at once, the rest only as a count when
    C{window} seconds have gone by -- C{tell(key, count)}. A flood costs
    one line per window, not one per event.
    """

    def __init__(self, clock, window, tell):
        self._clock = clock
        self._window = window
        self._tell = tell
        self._counts = {}

    def first(self, key):
        """Whether this event of C{key} is the first of its window (to be told in full)."""
        if key in self._counts:
            self._counts[key] += 1
            return False
        self._counts[key] = 0
        self._clock.callLater(self._window, self._close, key)
        return True

    def _close(self, key):
        count = self._counts.pop(key)
        if count:
            self._tell(key, count)


class TooMany(Exception):
    """An address has all the connections it may have."""


class PerAddress:
    """Open connections per client address, up to C{maximum} each."""

    def __init__(self, maximum):
        self._maximum = maximum
        self._open = collections.Counter()

    def count_in(self, address):
        """
        One more connection from C{address}.

        @raise TooMany: the address has its maximum already.
        """
        if self._open[address] >= self._maximum:
            raise TooMany(address)
        self._open[address] += 1

    def count_out(self, address):
        self._open[address] -= 1
        if not self._open[address]:
            del self._open[address]


@implementer(IPushProducer)
class Backlog:
    """
    What waits for a client while its transport is over its buffer (Twisted
    says pauseProducing), judged by progress: a client that is reading --
    however slowly -- keeps its connection; one whose queue has not shrunk
    for C{stall} seconds, or that has more than C{max_messages} messages or
    C{max_bytes} bytes waiting, is to be dropped.

    @param queued: how many bytes the transport holds, not yet sent.
    @param seconds: the clock.
    """

    def __init__(self, max_messages, max_bytes, stall, queued, seconds):
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._stall = stall
        self._queued = queued
        self._seconds = seconds
        self.paused = False
        self.messages = self.bytes = 0
        self._progress_at = self._after_last = 0
        self._waiting = []

    def pauseProducing(self):
        if not self.paused:
            self.paused = True
            self.messages = 0
            self.bytes = self._after_last = self._queued()
            self._progress_at = self._seconds()

    def resumeProducing(self):
        self.paused = False
        self._wake()

    def stopProducing(self):
        self._wake()

    def resumed(self):
        """A Deferred that fires when the transport takes more again, or is gone."""
        d = Deferred()
        self._waiting.append(d)
        return d

    def _wake(self):
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def admits(self, size):
        """Whether one more message of C{size} bytes may be queued."""
        if not self.paused:
            return True
        waiting = self._progress()
        self.messages += 1
        self.bytes = self._after_last = waiting + size
        if self.messages > self._max_messages or self.bytes > self._max_bytes:
            return False
        return self._seconds() - self._progress_at <= self._stall

    def stalled(self):
        """Whether, paused, the queue has not shrunk for C{stall} seconds."""
        self._progress()
        return self.paused and self._seconds() - self._progress_at > self._stall

    def _progress(self):
        """What waits now; the time of progress, if it shrank."""
        waiting = self._queued()
        if waiting < self._after_last:
            self._progress_at = self._seconds()
            self._after_last = waiting
        return waiting
