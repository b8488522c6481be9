"""
Steps that must take effect in the order a user asked for them.

A step such as a hangup reaches the store only after it has been relayed
(a round trip or two), so a request sent right after it could be paired
first -- answered with the very call the user had just hung up, which then
ends under it. Call steps of one user therefore wait for the one before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredLock

_T = TypeVar("_T")


class Turns:
    """One queue per key, forgotten when empty: memory follows the steps under way."""

    def __init__(self) -> None:
        self._locks: dict[str, DeferredLock] = {}

    def run(self, key: str, step: Callable[..., object], *args: object) -> Deferred[Any]:
        """
        Call C{step(*args)} once C{key}'s steps before it are done, whatever
        their outcome; fire with its result.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = DeferredLock()
        d = lock.run(step, *args)
        d.addBoth(self._done, key, lock)
        return d

    def _done(self, result: _T, key: str, lock: DeferredLock) -> _T:
        if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
            del self._locks[key]
        return result

    def __len__(self) -> int:
        return len(self._locks)
