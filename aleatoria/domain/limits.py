"""
What any one user or address may spend: token buckets (messages a second,
connection attempts), the hourly shares of what is kept, and summaries
that tell a flood of one kind once a window. Plain arithmetic on an
injected clock, no I/O.
"""

from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass

Seconds = Callable[[], float]
"""A clock: what C{reactor.seconds} is."""


class TokenBucket:
    """C{rate} tokens a second, at most C{burst} saved up; C{seconds} is the clock."""

    def __init__(self, rate: float, burst: float, seconds: Seconds) -> None:
        self._rate = rate
        self._burst = burst
        self._seconds = seconds
        self._tokens = float(burst)
        self._last = seconds()

    def delay(self, amount: float = 1) -> float:
        """
        Take C{amount} tokens if there are: 0 when they were taken, else the
        delay, in seconds, until they would be there (nothing taken).
        """
        now = self._seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= amount:
            self._tokens -= amount
            return 0
        return (amount - self._tokens) / self._rate

    def holds(self, amount: float, now: float) -> bool:
        """Whether C{amount} tokens are (or would be by C{now}) there to take."""
        return min(self._burst, self._tokens + (now - self._last) * self._rate) >= amount

    def next_token_in(self, now: float) -> float:
        """Seconds from C{now} until there is a token to take (0: there is one)."""
        tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        return 0 if tokens >= 1 else (1 - tokens) / self._rate

    def spend(self, tokens: float) -> None:
        """
        Take C{tokens} at once, into debt if need be -- but never more than
        a burst of debt: what a request worth several messages costs.
        """
        now = self._seconds()
        tokens_now = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._tokens = max(-self._burst, tokens_now - tokens)
        self._last = now

    def full_in(self, now: float) -> float:
        """Seconds from C{now} until the bucket is full."""
        tokens = self._tokens + (now - self._last) * self._rate
        return max(0.0, (self._burst - tokens) / self._rate)

    def full_in_at_least(self, now: float, seconds: float) -> None:
        """Spend what keeps the bucket from being full before C{now + seconds}."""
        self._tokens = min(self._tokens + (now - self._last) * self._rate,
                           self._burst - seconds * self._rate)
        self._last = now

    def full(self, now: float) -> bool:
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

    def __init__(self, rate: float, burst: float, seconds: Seconds) -> None:
        self._rate = rate
        self._burst = burst
        self._seconds = seconds
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._refill = burst / rate
        self._swept = seconds()

    def delay(self, key: Hashable, amount: float = 1) -> float:
        """C{key}'s bucket's L{TokenBucket.delay}."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._sweep()
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        return bucket.delay(amount)

    def holds(self, key: Hashable, amount: float) -> bool:
        """Whether C{key} has C{amount} tokens to take."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self._burst >= amount
        return bucket.holds(amount, self._seconds())

    def next_token_in(self, key: Hashable) -> float:
        """Seconds until C{key} has a token to take (0: it has one), taking none."""
        bucket = self._buckets.get(key)
        return bucket.next_token_in(self._seconds()) if bucket is not None else 0

    def spend(self, key: Hashable, tokens: float) -> None:
        """Take C{tokens} of C{key}'s at once (see L{TokenBucket.spend})."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._sweep()
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        bucket.spend(tokens)

    def __len__(self) -> int:
        return len(self._buckets)

    def full_in(self, key: Hashable) -> float:
        """Seconds until C{key}'s bucket is full again (0 if it is, or there is none)."""
        bucket = self._buckets.get(key)
        return bucket.full_in(self._seconds()) if bucket is not None else 0

    def full_in_at_least(self, key: Hashable, seconds: float) -> None:
        """Have C{key}'s bucket full again no sooner than in C{seconds}."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._seconds)
        bucket.full_in_at_least(self._seconds(), seconds)

    def _sweep(self) -> None:
        now = self._seconds()
        if now - self._swept >= self._refill:
            self._swept = now
            self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}


_HOUR = 3600


@dataclass(frozen=True)
class Shares:
    """What one user, or one client address, may have stored an hour."""

    messages: int
    """Chat messages, in room history or for a direct message's recipient."""
    bytes: int
    """What those messages weigh, each encoded, once: however many copies are kept."""
    conversations: int
    """Users newly written to (L{Quotas.charge})."""


class OverQuota(Exception):
    """
    A share is used up: C{what} (C{messages}, C{bytes} or C{conversations})
    of C{whose} (C{user} or C{address}).
    """

    def __init__(self, what: str, whose: str) -> None:
        super().__init__(what, whose)
        self.what = what
        self.whose = whose


class Quotas:
    """
    What one user may leave behind, per hour -- and where ids are free (a
    client names itself, or the server names any newcomer), what all the
    users of one client address may leave together: its L{Shares}, each a
    L{KeyedBuckets} of C{n} an hour that may all be spent at once. Counted
    on each daemon.

    @param per_user: the L{Shares} of each user.
    @param per_address: the L{Shares} of each address; C{None} when ids
        are not free (tokens), and an address is not counted.
    @param seconds: the clock.
    """

    def __init__(self, per_user: Shares, per_address: Shares | None, seconds: Seconds) -> None:
        self._shares = {"user": _hourly(per_user, seconds)}
        if per_address is not None:
            self._shares["address"] = _hourly(per_address, seconds)
        self._recent: dict[tuple[str, str], float] = {}
        self._seconds = seconds
        self._swept = seconds()

    def charge(self, user: str, address: str, size: int, to_user: str = "") -> None:
        """
        Charge storing one message of C{size} bytes from C{user} at
        C{address} -- a direct message to C{to_user} costs a conversation
        too, unless C{user} started writing to it within the hour: all of
        it, or nothing when a share is short.

        @raise OverQuota: naming the share that is short.
        """
        now = self._seconds()
        new = bool(to_user) and not self._lately(user, to_user, now)
        owners = {"user": user, "address": address}
        costs = (("conversations", int(new)), ("messages", 1), ("bytes", size))
        charges = []
        for whose, shares in self._shares.items():
            for what, amount in costs:
                if amount:
                    if not shares[what].holds(owners[whose], amount):
                        raise OverQuota(what, whose)
                    charges.append((shares[what], owners[whose], amount))
        for buckets, owner, amount in charges:
            buckets.delay(owner, amount)
        if new:
            self._started(user, to_user, now)

    def _lately(self, user: str, peer: str, now: float) -> bool:
        started = self._recent.get((user, peer))
        return started is not None and now - started < _HOUR

    def _started(self, user: str, peer: str, now: float) -> None:
        self._recent[(user, peer)] = now
        if now - self._swept >= _HOUR:
            self._swept = now
            self._recent = {k: t for k, t in self._recent.items() if now - t < _HOUR}


def _hourly(shares: Shares, seconds: Seconds) -> dict[str, KeyedBuckets]:
    return {what: KeyedBuckets(n / _HOUR, n, seconds) for what, n in asdict(shares).items()}
