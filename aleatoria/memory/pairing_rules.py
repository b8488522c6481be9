"""
The rules a request for a peer is held to in the embedded backend
(L{aleatoria.domain.matchmaking.Ask}): how often a user may ask, and
which two users may not meet again yet. Both forget what no longer
matters as they go, so memory follows the users who asked lately.
"""

from collections import deque

from aleatoria.domain.matchmaking import SKIP_WINDOW


class Skips:
    """
    Each user's requests of the last L{SKIP_WINDOW} seconds, a sliding window.

    @param seconds: the clock.
    """

    def __init__(self, seconds):
        self._seconds = seconds
        self._asked = {}
        """Each user who asked lately: when (oldest first); the least recent user first."""

    def take(self, user, limit):
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

    def _forget(self, now):
        """Drop the users whose last request left the window (the least recent come first)."""
        for user, asked in list(self._asked.items()):
            if asked and asked[-1] > now - SKIP_WINDOW:
                return
            del self._asked[user]
