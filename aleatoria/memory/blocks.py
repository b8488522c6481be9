"""
Blocks in the embedded backend: who blocked whom, for the daemon's life.
Pairing (L{aleatoria.memory.matchmaking}) and direct messages
(L{aleatoria.memory.streams}) ask L{MemoryBlocks.between} in their own
steps, which are atomic in one process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from aleatoria.domain.safety_ports import IBlocks
from aleatoria.domain.values import Blocking

if TYPE_CHECKING:
    from aleatoria.memory.matchmaking import MemoryMatchmaking


@implementer(IBlocks)
class MemoryBlocks:
    """
    @param matchmaking: the L{aleatoria.memory.matchmaking.MemoryMatchmaking},
        whose match of two users a block ends.
    """

    def __init__(self, matchmaking: MemoryMatchmaking) -> None:
        self._matchmaking = matchmaking
        self._blocks: dict[str, set[str]] = {}
        """Each user who blocks anybody: whom."""

    def block(self, user: str, other: str, most: int | None = None) -> Deferred[Blocking]:
        mine = self._blocks.setdefault(user, set())
        added = other not in mine
        if added and most is not None and len(mine) >= most:
            return succeed(Blocking(False, full=True))
        mine.add(other)
        match = self._matchmaking.matches.get(user)
        ended = match is not None and match.peer == other
        if ended:
            self._matchmaking.end_match(user)
        return succeed(Blocking(added, ended=ended))

    def unblock(self, user: str, other: str) -> Deferred[bool]:
        mine = self._blocks.get(user, set())
        had = other in mine
        mine.discard(other)
        if not mine:
            self._blocks.pop(user, None)
        return succeed(had)

    def blocked(self, user: str) -> Deferred[list[str]]:
        return succeed(sorted(self._blocks.get(user, ())))

    def between(self, user_a: str, user_b: str) -> Deferred[bool]:
        return succeed(self.blocks(user_a, user_b))

    def blocks(self, user_a: str, user_b: str) -> bool:
        """L{between}, at once: for the steps of the other seams."""
        return (user_b in self._blocks.get(user_a, ())
                or user_a in self._blocks.get(user_b, ()))
