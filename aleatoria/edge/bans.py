"""
A handshake of a banned user, or from a banned address, is refused: 403,
its body's code C{banned} and the whole seconds the ban has left in
C{retryAfter} (and in a Retry-After header). Checked against this
daemon's copy of the bans (L{aleatoria.domain.bans}): no store asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from autobahn.websocket.types import ConnectionDeny

if TYPE_CHECKING:
    from aleatoria.domain.bans import Bans


class Banned(ConnectionDeny):
    """A refusal by a ban: what its answer says beyond the status, C{body} and C{headers}."""

    def __init__(self, seconds: int) -> None:
        super().__init__(ConnectionDeny.FORBIDDEN, "banned")
        self.body: dict[str, object] = {"code": "banned", "retryAfter": seconds}
        self.headers = (("Retry-After", str(seconds)),)


def check(bans: Bans, user: str, address: str, handshake: bool = True) -> None:
    """
    @param bans: the hub's L{aleatoria.domain.bans.Bans}.
    @param handshake: a handshake is refused (told), not a verdict on one.
    @raise Banned: a ban bars C{user} or C{address}.
    """
    seconds = bans.refusing(user, address) if handshake else bans.holding(user, address)
    if seconds:
        raise Banned(seconds)


def refusal_body(deny: ConnectionDeny, codes: Mapping[int, str]) -> dict[str, object]:
    """The JSON body of a refused handshake: C{{"error", "code"}}, and more of a ban."""
    return {"error": deny.reason, "code": codes.get(deny.code, "refused"),
            **getattr(deny, "body", {})}
