"""
The values the seams of L{aleatoria.domain.ports} answer with: plain
data, whichever backend (memory or Redis) found it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aleatoria.domain.matchmaking import Match

MembersPage = tuple[list[str], int, str | None]
"""One page of a room's members: the page, how many there are, the C{after} of the next."""

RoomsPage = tuple[list[tuple[str, int]], int]
"""One page of the rooms with members: C{[(room, members)]}, and how many rooms there are."""


def new_epoch() -> str:
    """A fresh epoch: what tells a stream from one that was lost and begun again."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Claim:
    """
    What claiming a user ended: the daemon that had it, the partner of its
    call, and the rooms it was in; and, if the user spent its message
    budget lately, the seconds until it is full again (so that reconnecting
    to another daemon does not refill it). C{resumed}: the user's call,
    held since its connection was lost (or replaced), as a
    L{aleatoria.domain.matchmaking.Match}; or C{None}.
    """

    previous_owner: str | None
    former_peer: str | None
    rooms: tuple[str, ...] = ()
    budget_refills_in: float | None = None
    resumed: Match | None = None


def direct_key(user_a: str, user_b: str) -> tuple[str, str]:
    """The two parties of a conversation, in the order the key uses."""
    return (user_a, user_b) if user_a <= user_b else (user_b, user_a)


@dataclass(frozen=True)
class Place:
    """Where a message was put in its stream: its offset, and the stream's epoch."""

    offset: int
    epoch: str


@dataclass(frozen=True)
class Since:
    """
    What a stream holds after an offset: its epoch, its last offset, the
    messages after the offset that are still kept (oldest first:
    L{aleatoria.domain.events.RoomMessage}s or C{DirectMessage}s), and
    whether that is all of them.
    """

    epoch: str
    last: int
    messages: list[Any]
    complete: bool


@dataclass(frozen=True)
class Conversation:
    """One entry of a user's inbox: with whom, the last message, how many unread."""

    with_user: str
    last: Any
    unread: int


@dataclass(frozen=True)
class Posted:
    """
    A stream message kept and handed to every daemon: whether a live one
    may have missed it, and -- for a direct message -- whether the
    recipient is connected anywhere.
    """

    missed: bool = False
    online: bool = True


@dataclass(frozen=True)
class Blocking:
    """
    What a block came to: whether it is new, refused as one too many
    (C{full}), and whether it ended the two users' match.
    """

    added: bool
    full: bool = False
    ended: bool = False


@dataclass(frozen=True)
class Meeting:
    """
    A user's current or most recent match: with whom, when it began and
    ended (Unix milliseconds; C{ended} is C{None} while it lasts), and the
    interests the two shared.
    """

    peer: str
    started: int
    ended: int | None = None
    common: tuple[str, ...] = ()
