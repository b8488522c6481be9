"""
Random pairing for video calls: the rules, and the values they produce.

docs/protocol.rst (request_random_peer) defines the life of a match. It starts when a
request pairs two users (the requester impolite, the peer polite); it ends
with a hangup between them, a disconnect of either, or a skip -- a new
request whose C{currentPeerId} names the current peer. A request from a
matched user that names anybody else crossed its own assignment in flight
and is answered with that assignment again. So nobody ever holds two
partners, and every pair agrees.

The pool and the matches live in the store, where every step is atomic --
in one process for the memory store, across daemons for Redis.
"""

from dataclasses import dataclass

IMPOLITE = "impolite"
POLITE = "polite"

ENDED = "ended"
"""
Why a call ended, as a user is told when it need not know more: its
partner blocked it, or news of the end was overtaken
(L{aleatoria.domain.calls.Calls.started}).
"""


@dataclass(frozen=True)
class Match:
    """One side of a pairing: the partner, and this side's role."""

    peer: str
    role: str


@dataclass(frozen=True)
class Pairing:
    """
    What one request came to.

    @ivar match: the requester's match now, or C{None} when nobody fitted.
    @ivar fresh: the match was made by this request (the peer must be told)
        rather than being the current one repeated.
    @ivar skipped: the peer this request skipped, who must be told, or C{None}.
    """

    match: Match | None
    fresh: bool = False
    skipped: str | None = None
