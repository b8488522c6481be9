"""
The domain's calls to its seams, watched: timed, and a failure reported
(by the L{aleatoria.domain.ports.IAccounting}) and turned into what the
caller can act on -- L{FAILED} when nobody waits for the answer, or
L{Unavailable} for a client that does.
"""

import enum
from collections.abc import Iterable
from typing import Final

from twisted.internet.defer import Deferred, gatherResults
from twisted.python.failure import Failure

from aleatoria.domain.ports import IAccounting
from aleatoria.domain.refusals import Refused, StoreUnavailable, Unavailable


class Failed(enum.Enum):
    """The type of L{FAILED}: a sentinel that type checkers tell from any result."""

    MARK = "failed"


FAILED: Final = Failed("failed")
"""What a watched Deferred fires with when its work failed (and was dealt with)."""


class Work:
    """@param accounting: the L{aleatoria.domain.ports.IAccounting}."""

    def __init__(self, accounting: IAccounting) -> None:
        self._accounting = accounting

    def timed(self, d: Deferred, operation: str) -> Deferred:
        """C{d}, timed as C{operation}."""
        self._accounting.timed(d, operation)
        return d

    def watch(self, d: Deferred, operation: str, user: str | None = None, asked: bool = False,
              timed: bool = True) -> Deferred:
        """
        Time C{d} (unless it is timed already) and report its failure, in
        C{user}'s name if there is one -- an outage is reported by the
        backend, once for all; a L{Refused} passes through. Returns C{d},
        which then fires with L{FAILED} instead of failing -- or, when a
        client C{asked} and waits for the answer, fails with L{Unavailable}.
        """
        if timed:
            self._accounting.timed(d, operation)

        def failed(failure: Failure) -> object:
            if failure.check(Refused):
                return failure
            if not failure.check(StoreUnavailable):
                self._accounting.failed(failure, operation, user)
            if asked:
                raise Unavailable("That is unavailable right now; try again later.")
            return FAILED

        return d.addErrback(failed)


Done = Deferred[Failed | None]
"""What L{all_done} gives: it fires with L{FAILED} if some of the work failed, else C{None}."""


def all_done(deferreds: Iterable[Deferred]) -> Done:
    """Fire with L{FAILED} if any of the (watched) C{deferreds} did, else C{None}."""
    d = gatherResults(deferreds, consumeErrors=True)
    return d.addCallback(lambda results: FAILED if FAILED in results else None)
