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

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aleatoria.domain.refusals import Invalid, RateLimited

if TYPE_CHECKING:
    from aleatoria.domain.ports import IConnection

DEFAULT_SEGMENT = "default"
"""The segment of a user whose token names none, or who has no token."""
MAX_SEGMENT = 32
"""The longest segment name, in characters."""
MAX_INTERESTS = 10
"""Interests one request or availability may name."""
MAX_INTEREST = 32
"""The longest interest, in characters."""

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
    """One side of a pairing: the partner, this side's role, the interests they share."""

    peer: str
    role: str
    common: tuple[str, ...] = ()


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
    retry_after: float | None = None
    """Seconds until the requester may ask again, when it asked too often (then nothing changed)."""


@dataclass(frozen=True)
class Seat:
    """What a user said when it became available: its segment and its interests."""

    segment: str = DEFAULT_SEGMENT
    interests: tuple[str, ...] = ()


SKIP_WINDOW = 60
"""Seconds over which a user's requests are counted (C{--skips-per-minute})."""


@dataclass(frozen=True)
class Ask:
    """
    What one request asks of the store, and the rules it is held to there.

    @ivar skips: requests a user may make in L{SKIP_WINDOW} seconds,
        this one included; 0: no limit.
    @ivar rematch_after: seconds after a match ends during which its two
        users are not paired again.
    @ivar segment: the part of the pool the requester is paired within:
        users of two segments are never paired.
    @ivar interests: a user who shares one of these is picked first.
    @ivar only: only such a user is picked; if none is there, the
        requester enters the pool with its interests instead.
    """

    skips: int = 0
    rematch_after: float = 0
    segment: str = DEFAULT_SEGMENT
    interests: tuple[str, ...] = ()
    only: bool = False


NO_RULES = Ask()
"""A request held to no rule: what the contract of the seam mostly asks."""


@dataclass(frozen=True)
class PairingRules:
    """The daemon's matchmaking settings (C{--skips-per-minute}, C{--rematch-after})."""

    skips_per_minute: int = 0
    rematch_after: float = 0

    def ask(self, conn: IConnection, interests: Sequence[str] = (), only: bool = False) -> Ask:
        """
        What C{conn}'s request asks of the store.

        @raise Invalid: the interests are not as L{interests_of} takes them.
        """
        interests = interests_of(interests)
        return Ask(self.skips_per_minute, self.rematch_after, conn.segment, interests,
                   bool(only and interests))

    def seat(self, conn: IConnection, interests: Sequence[str] = ()) -> Seat:
        """What C{conn}'s user is available as."""
        return Seat(conn.segment, interests_of(interests))


def interests_of(given: Sequence[str]) -> tuple[str, ...]:
    """
    Interests as the store compares them: lower case, each once, in the
    order given.

    @raise Invalid: more than L{MAX_INTERESTS}, or one not of 1 to
        L{MAX_INTEREST} characters.
    """
    if len(given) > MAX_INTERESTS:
        raise Invalid(f"At most {MAX_INTERESTS} interests.")
    interests = []
    for interest in given:
        if not 0 < len(interest) <= MAX_INTEREST or not interest.isprintable():
            raise Invalid(f"An interest has 1 to {MAX_INTEREST} printable characters.")
        interest = interest.lower()
        if interest not in interests:
            interests.append(interest)
    return tuple(interests)


def within_limit(pairing: Pairing) -> Pairing:
    """
    C{pairing}, unless its requester asked too often.

    @raise RateLimited: it did; nothing changed.
    """
    if pairing.retry_after is not None:
        raise RateLimited("You asked for peers too often; wait a little.",
                          retryAfter=max(1, round(pairing.retry_after * 1000)))
    return pairing
