"""
Redis Sentinel: where the primary is, asked of the sentinels before each
connection attempt, and the news of a failover (C{+switch-master}) as
soon as they have it.

txredisapi's own C{Sentinel} asks through lazy connections, which wait
without bound on a sentinel that is down or refuses the password, and
takes the first answer, which during a failover may still name the old
primary. Here each sentinel is a L{Link} like the daemon's own (our
handshake, its backoff, one line for a refused password), every sentinel
that is up is asked, and the answer of the newest configuration epoch
wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from aleatoria.redis.link import Link

SWITCH = "+switch-master"
"""The channel on which sentinels announce a new primary."""


class NoPrimary(ConnectError):
    """No sentinel named a primary that is up; the connection attempt fails and is retried."""


class Sentinels(Service):
    """
    The sentinels of one primary.

    @param addresses: C{(host, port)} of each sentinel.
    @param master: the name they know the primary by.
    @param connect: C{connect(host, port)}: an endpoint to that address.
    @param link_options: what each sentinel's L{Link} takes besides:
        C{timeout}, C{retry_max}, C{password} (the sentinels' own).
    """

    _log = Logger(namespace="aleatoria.redis")

    def __init__(self, addresses: Iterable[tuple[str, int]], master: str, reactor: IReactorTime,
                 connect: Callable[[str, int], IStreamClientEndpoint], **link_options: Any) -> None:
        self.master = master
        self._reactor = reactor
        self._timeout = link_options["timeout"]
        self._refusal: str | None = None
        self._followers: list[Callable[[str], object]] = []
        self._connect = connect
        options = dict(link_options, primary=False, on_refusal=self._refused)
        self.links: list[Link] = []
        self._watches: list[Link] = []
        for host, port in addresses:
            where = f"{host}:{port}"
            self.links.append(Link(connect(host, port), where, reactor, **options))
            self._watches.append(Link(connect(host, port), where, reactor, channels=[SWITCH],
                                      on_message=self._switched, **options))

    def endpoint(self) -> PrimaryEndpoint:
        """An endpoint to the primary, for one link (each notes where it went)."""
        return PrimaryEndpoint(self, self._connect)

    def follow(self, move: Callable[[str], object]) -> None:
        """Call C{move(address)} when the sentinels announce a new primary at C{address}."""
        self._followers.append(move)

    def startService(self) -> None:
        super().startService()
        for link in self.links + self._watches:
            link.start()

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        return DeferredList([link.stop() for link in self.links + self._watches])

    def primary(self) -> Deferred[tuple[str, int]]:
        """
        Ask every sentinel that is up where the primary is; fire with the
        C{(host, port)} of the newest configuration, or fail with
        L{NoPrimary}.
        """
        asked = [link for link in self.links if link.up]
        if not asked:
            return fail(NoPrimary(f"no sentinel answers (of {len(self.links)})"))
        questions: list[Deferred[Any]] = []
        for link in asked:
            d = link.handler.execute_command("SENTINEL", "MASTER", self.master)
            questions.append(d.addTimeout(self._timeout, self._reactor))
        return DeferredList(questions, consumeErrors=True).addCallback(self._newest)

    def _newest(self, answers: list[tuple[bool, Any]]) -> tuple[str, int]:
        named: list[tuple[int, str, int]] = []
        for ok, reply in answers:
            if not ok or not isinstance(reply, list):
                continue
            state = dict(zip(reply[::2], reply[1::2], strict=False))
            flags = str(state.get("flags", "")).split(",")
            if "s_down" in flags or "o_down" in flags:
                continue
            named.append((int(state.get("config-epoch", 0)), str(state["ip"]),
                          int(state["port"])))
        if not named:
            raise NoPrimary(f"no sentinel names a primary of {self.master!r} that is up "
                            "(is --redis-sentinel-master right?)")
        _, host, port = max(named)
        return host, port

    def _switched(self, message: str | bytes) -> None:
        """C{<master> <old ip> <old port> <new ip> <new port>}, from any sentinel."""
        if isinstance(message, bytes):
            message = message.decode()
        parts = message.split()
        if len(parts) == 5 and parts[0] == self.master:
            address = f"{parts[3]}:{parts[4]}"
            for move in self._followers:
                move(address)

    def _refused(self, why: str) -> None:
        """One line for all the sentinels that refuse us for one reason."""
        if why != self._refusal:
            self._refusal = why
            self._log.warn("A sentinel did not complete our handshake ({why}); retrying; "
                           "check ALEATORIA_REDIS_SENTINEL_PASSWORD", why=why)


@implementer(IStreamClientEndpoint)
class PrimaryEndpoint:
    """
    Connects to wherever the sentinels say the primary is, asking them
    anew at every attempt; C{address} is the last answer.
    """

    def __init__(self, sentinels: Sentinels,
                 connect: Callable[[str, int], IStreamClientEndpoint]) -> None:
        self._sentinels = sentinels
        self._connect = connect
        self.address: str | None = None
        self.trouble: str | None = None
        """Why the last attempt found no primary (L{NoPrimary}'s words), or C{None}."""

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        def there(primary: tuple[str, int]) -> Deferred[IProtocol]:
            host, port = primary
            self.address = f"{host}:{port}"
            self.trouble = None
            return self._connect(host, port).connect(factory)

        def nowhere(failure: Failure) -> Failure:
            failure.trap(NoPrimary)
            self.trouble = failure.getErrorMessage()
            return failure

        return self._sentinels.primary().addCallbacks(there, nowhere)
