"""
Keeping strangers safe: a user blocks another (never paired again, in
either role; no direct message or signaling between them, either way;
their call, if they are in one, ends at once -- the blocked side hears
only that it ended).

The blocks live in the L{aleatoria.domain.safety_ports.IBlocks} seam, and the
pairing and direct-message steps of the other seams honour them
atomically; signaling (L{aleatoria.domain.calls}) asks the seam first,
unless the two are matched (a match never joins two users with a block
between them). Reports (L{aleatoria.domain.reports}) block as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from aleatoria.domain.matchmaking import ENDED
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Forbidden, Invalid, QuotaExceeded
from aleatoria.domain.rules import check_user
from aleatoria.domain.safety_facts import Blocked, Unblocked
from aleatoria.domain.values import Blocking

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub


def write_refused(recipient: str) -> Forbidden:
    """What a direct message between two users with a block between them is refused with."""
    return Forbidden(f"You cannot write to {recipient}.")


def signal_refused(recipient: str) -> Forbidden:
    """What signaling between two users with a block between them is refused with."""
    return Forbidden(f"You cannot signal {recipient}.")


class Safety:
    """
    @param hub: the L{aleatoria.domain.hub.Hub}.
    @param max_blocks: how many users one user may block.
    """

    def __init__(self, hub: Hub, max_blocks: int) -> None:
        self._hub = hub
        self._max_blocks = max_blocks

    def block(self, conn: IConnection, other: str) -> Deferred[None]:
        """
        C{conn}'s user blocks C{other}, ending their call if they are in
        one; fire when it is kept.

        @raise QuotaExceeded: it blocks as many users as it may already.
        """
        user = self.check_other(conn.user_id, other, "block")
        hub = self._hub
        d = hub.blocks.block(user, other, self._max_blocks)
        d.addCallback(self._blocked, user, other)
        return hub.work.watch(d, "block", user, asked=True)

    def _blocked(self, blocking: Blocking, user: str, other: str) -> None:
        if blocking.full:
            raise QuotaExceeded(f"You block {self._max_blocks} users, as many as you may; "
                                "unblock somebody first.")
        self._hub.tell(Blocked(user, other, blocking.ended))
        if blocking.ended:
            self.end_call(user, other)

    def end_call(self, user: str, other: str, why: str = "blocked") -> None:
        """
        C{user} ended its call with C{other} by blocking it (C{why}:
        C{blocked} or C{reported}, as observers hear): C{other} hears
        only that it ended.
        """
        calls = self._hub.calls
        calls.end(other, user, why, calls.forget(user), told=ENDED)

    def unblock(self, conn: IConnection, other: str) -> Deferred[None]:
        """C{conn}'s user no longer blocks C{other}."""
        user = self.check_other(conn.user_id, other, "unblock")
        hub = self._hub
        d = hub.blocks.unblock(user, other)
        d.addCallback(lambda had: hub.tell(Unblocked(user, other, had)))
        return hub.work.watch(d, "unblock", user, asked=True)

    def blocked(self, conn: IConnection) -> Deferred[list[str]]:
        """Fire with the users C{conn}'s user blocks, sorted."""
        hub = self._hub
        return hub.work.watch(hub.blocks.blocked(conn.user_id), "blocked", conn.user_id,
                              asked=True)

    def check_other(self, user: str, other: str, what: str) -> str:
        """
        @raise Invalid: C{other} is missing, no user id, or C{user} itself
            (C{what}: what C{user} would do to it).
        """
        if not other:
            raise Invalid(f"{what}_user needs payload.userId.")
        check_user(other, "userId")
        if other == user:
            raise Invalid(f"You cannot {what} yourself.")
        return user
