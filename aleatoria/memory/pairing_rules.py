"""
The rules a request for a peer is held to in the embedded backend
(L{aleatoria.domain.matchmaking.Ask}): how often a user may ask, and
which two users may not meet again yet. Both forget what no longer
matters as they go, so memory follows the users who asked lately.
"""

from __future__ import annotations

from collections import deque

from aleatoria.domain.limits import Seconds
from aleatoria.domain.matchmaking import SKIP_WINDOW


class Skips:
    """
    Each user's requests of the last L{SKIP_WINDOW} seconds, a sliding window.

    @param seconds: the clock.
    """

    def __init__(self, seconds: Seconds) -> None:
        self._seconds = seconds
        self._asked: dict[str, deque[float]] = {}
        """Each user who asked lately: when (oldest first); the least recent user first."""

    def take(self, user: str, limit: int) -> float | None:
        """
        Count one request of C{user}'s, unless it made C{limit} in the
        window already (0: no limit): then the seconds until it may again.
        """
        if not limit:
            return None
        now = self._seconds()
        self._forget(now)
        asked = self._asked.pop(user, None) or deque()
        self._asked[user] = asked
        while asked and asked[0] <= now - SKIP_WINDOW:
            asked.popleft()
        if len(asked) >= limit:
            return asked[0] + SKIP_WINDOW - now
        asked.append(now)
        return None

    def _forget(self, now: float) -> None:
        """Drop the users whose last request left the window (the least recent come first)."""
        for user, asked in list(self._asked.items()):
            if asked and asked[-1] > now - SKIP_WINDOW:
                return
            del self._asked[user]


class Rematches:
    """
    The pairs whose match ended lately, until they may be paired again.

    @param seconds: the clock.
    """

    def __init__(self, seconds: Seconds) -> None:
        self._seconds = seconds
        self._after: dict[frozenset[str], float] = {}
        """Each pair matched now: seconds after its end during which it may not meet again."""
        self._until: dict[frozenset[str], float] = {}
        """Each pair that may not meet yet: until when; those that ended first, first."""

    def paired(self, a: str, b: str, after: float) -> None:
        """C{a} and C{b} were matched: not again within C{after} seconds of its end."""
        if after:
            self._after[frozenset((a, b))] = after

    def ended(self, a: str, b: str) -> None:
        """The match of C{a} and C{b} ended."""
        pair = frozenset((a, b))
        after = self._after.pop(pair, None)
        if after:
            self._until.pop(pair, None)
            self._until[pair] = self._seconds() + after

    def barred(self, a: str, b: str) -> bool:
        """Whether C{a} and C{b} may not be paired yet."""
        now = self._seconds()
        for pair, until in list(self._until.items()):
            if until > now:
                break
            del self._until[pair]
        return self._until.get(frozenset((a, b)), 0) > now
