"""
The life of a call past its start, for L{aleatoria.domain.calls.Calls}:
a hangup, the release of a user's session -- its call ended, or held for
the user's return (docs/protocol.rst, "The life of a call") -- and that
return; a user away is C{user_offline} with what is left of its grace.
"""

from typing import TYPE_CHECKING, NoReturn

from msgspec import Raw
from twisted.internet.defer import Deferred, succeed

from aleatoria.domain.events import CallEnded, CallStarted, Fact, HungUp, PeerReconnected
from aleatoria.domain.matchmaking import Match
from aleatoria.domain.ports import IConnection
from aleatoria.domain.refusals import Invalid, Offline, StoreUnavailable, Unavailable
from aleatoria.domain.rules import check_user
from aleatoria.domain.work import FAILED, Failed

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

SIGNALS = {"offer": "An offer", "answer": "An answer", "candidate": "A candidate",
           "hangup": "A hangup"}
"""The kinds of signaling the relay passes on, as a sentence names them."""


class CallHeld(Fact, frozen=True):
    """C{user} lost its connection: its call with C{peer} waits for it (the call grace)."""

    user: str
    peer: str


class CallResumed(Fact, frozen=True):
    """C{user} came back within the grace of its call with C{peer}."""

    user: str
    peer: str


class CallLife:
    """
    What L{aleatoria.domain.calls.Calls} does once a call is made: a mixin
    of it, using its hub, its records of calls and its relay.
    """

    if TYPE_CHECKING:  # what the mixin uses of Calls
        _hub: "Hub"
        _partners: dict[str, str]
        _matches: dict[str, Match]
        _since: dict[str, int]

        def relay(self, conn: IConnection, kind: str, to_user: str, payload: Raw,
                  message_id: str = "") -> Deferred[None] | None: ...

        def end(self, user: str, peer: str, reason: str, started: int | None = None,
                told: str | None = None) -> Deferred[object]: ...

        def _lasted(self, started: int | None) -> float | None: ...

        def partner(self, user: str) -> str | None: ...

        def forget(self, user: str) -> int | None: ...

        def _now(self) -> str: ...

    def hangup(self, conn: IConnection, peer: str, payload: Raw,
               message_id: str = "") -> Deferred[None]:
        """
        End the match of C{conn}'s user and C{peer}, if they are matched,
        and then relay the hangup to C{peer} -- in that order, so that a
        peer away (its call held) cannot come back to the call in between
        and miss its end. A peer unreached is no error once the match
        ended; a match that could not be ended (an outage) is, after the
        relay.
        """
        user = conn.user_id
        addressed("hangup", user, peer)
        self._partners.pop(user, None)
        hub = self._hub
        d = hub.work.watch(hub.matchmaking.hang_up(user, peer), "hang_up", user, asked=True)
        d.addErrback(lambda failure: failure.trap(Unavailable) and failure.value)
        return d.addCallback(self._hung_up, conn, peer, payload, message_id)

    def _hung_up(self, ended: object, conn: IConnection, peer: str, payload: Raw,
                 message_id: str) -> Deferred[None]:
        user = conn.user_id
        if ended is True:
            self._matches.pop(user, None)
            self._hub.tell(HungUp(user, peer, self._lasted(self._since.pop(user, None))))
        relayed = self.relay(conn, "hangup", peer, payload, message_id)
        d = relayed if relayed is not None else succeed(None)
        if ended is True:
            d.addErrback(lambda failure: failure.trap(Offline) and None)
        elif isinstance(ended, Unavailable):
            d.addCallback(_raise, ended)
        return d


    def hung_up_by(self, sender: str, user: str) -> bool:
        """
        A hangup from C{sender} reached C{user}, here: whether that is
        news, not the late end of a call it left already.
        """
        current = self.partner(user)
        if current is not None and current != sender:
            return False
        self.forget(user)
        return True

    def ended(self, push: CallEnded) -> bool:
        """
        C{push.user}, here, is told its call with C{push.peer} is over:
        whether that is news, not the late end of a call it left already.
        """
        current = self.partner(push.user)
        if current is not None and current != push.peer:
            return False
        self.forget(push.user)
        return True

    def offline(self, user: str) -> Deferred[NoReturn]:
        """
        C{user} could not be reached: fail with L{Offline}, saying in how
        many milliseconds the grace of its held call ends, if it has one
        (C{retryAfter}).
        """
        hub = self._hub
        d = hub.work.timed(hub.matchmaking.grace_left(user), "grace_left")
        d.addErrback(lambda failure: failure.trap(StoreUnavailable) and 0)
        return d.addCallback(_offline, user)

    def released(self, former_peer: str | Failed | None, user: str, partner: str | None,
                 started: int | None) -> object:
        """
        C{user}'s session was released: its call with C{former_peer} (which
        C{started} then, ns) is over, or it waits for the user (with
        C{partner}, if held).
        """
        if former_peer is None and partner is not None:
            self._hub.tell(CallHeld(user, partner))
        if former_peer is None or former_peer is FAILED:
            return former_peer
        return self.end(former_peer, user, "disconnected", started)

    def resumed(self, user: str, match: Match) -> None:
        """
        C{user}, here, came back within the grace of its held call: it is
        told the call again, and its partner that it is back.
        """
        hub, now = self._hub, self._now()
        hub.tell(CallResumed(user, match.peer))
        hub.arrived(user, CallStarted(user, match.peer, match.role, now, match.common,
                                         resumed=True))
        hub.notify(match.peer, PeerReconnected(match.peer, user, now))


def _raise(_: object, error: Exception) -> NoReturn:
    raise error


def _offline(left_ms: int, user: str) -> NoReturn:
    details = {"retryAfter": left_ms} if left_ms else {}
    raise Offline(f"{user} is not online.", **details)  # type: ignore[arg-type]  # not fault


def addressed(kind: str, user: str, to_user: str) -> None:
    """
    @raise Invalid: signaling of C{kind} from C{user} cannot go to C{to_user}.
    """
    if not to_user:
        raise Invalid(f"{SIGNALS[kind]} needs toUser.", fault="webrtc_routing")
    if to_user == user:
        raise Invalid(f"You cannot signal yourself ({kind}).")
    check_user(to_user)
