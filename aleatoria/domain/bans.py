"""
Bans: the server API bars a user, or a range of client addresses, for a
time, on every daemon -- its open connections closed, its handshakes
refused until the ban ends or is lifted.

Each daemon keeps a copy of the bans in force (L{BanIndex}), so that a
handshake is checked without asking the store: it costs a dictionary
lookup for the user and one per prefix length in use for the address,
and nothing at all when there are no bans. The copy is loaded whenever
the store may have changed unseen (at start, when Redis comes back) and
follows what every daemon sets or lifts (the store hands this daemon
the others' changes, L{aleatoria.domain.safety_ports.IBans.listen}). A ban
carries its end: expiry needs no news.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, cast

from twisted.internet.defer import Deferred

from aleatoria.domain.events import Ban
from aleatoria.domain.refusals import Invalid
from aleatoria.domain.rules import check_reason, check_user
from aleatoria.domain.safety_facts import Banned, HandshakeBanned, KickedByBan, Unbanned
from aleatoria.domain.safety_ports import IBans

if TYPE_CHECKING:
    from aleatoria.domain.hub import Hub

_K = TypeVar("_K")

MAX_SECONDS = 10 * 366 * 86400
"""The longest ban: ten years (a longer one is no ban, but a deletion of the account)."""

MAX_REASON = 500
"""Characters of a ban's reason: the operator's note, never shown to the banned."""

CLOSE_REASON = "banned"
"""What the closed connection of a banned user is told: nothing of the operator's reason."""

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """
    The network an address or CIDR range names (host bits cleared; an
    IPv4-mapped IPv6 range as the IPv4 one, as client addresses are).

    @raise Invalid: C{text} names none.
    """
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise Invalid("address is an IPv4 or IPv6 address or CIDR range, "
                      "e.g. 203.0.113.7 or 203.0.113.0/24 or 2001:db8::/32.") from None
    if (isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96
            and network.subnet_of(_MAPPED)):
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def new_id(now: float) -> str:
    """A ban's id: ordered by creation (milliseconds, in hex), then random."""
    return f"{int(now * 1000):012x}{secrets.token_hex(4)}"


class BanIndex:
    """
    The bans in force, as this daemon knows them: by id, by user, and by
    address family and prefix length, then network.
    """

    def __init__(self) -> None:
        self.by_id: dict[str, Ban] = {}
        self.by_user: dict[str, dict[str, Ban]] = {}
        self.by_network: dict[tuple[int, int], dict[int, dict[str, Ban]]] = {}
        """{(version, prefixlen): {network address as int: {id: ban}}}"""
        self._levels: dict[int, list[tuple[int, dict[int, dict[str, Ban]]]]] = {4: [], 6: []}
        """Per address family: (bits below the prefix, that prefix length's networks)."""

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, ban: Ban) -> None:
        self.remove(ban.id)
        self.by_id[ban.id] = ban
        if ban.user:
            self.by_user.setdefault(ban.user, {})[ban.id] = ban
        if ban.network:
            net = ipaddress.ip_network(ban.network)
            if (net.version, net.prefixlen) not in self.by_network:
                self.by_network[(net.version, net.prefixlen)] = {}
                self._index_levels()
            level = self.by_network[(net.version, net.prefixlen)]
            level.setdefault(int(net.network_address), {})[ban.id] = ban

    def remove(self, ban_id: str) -> Ban | None:
        """Forget a ban; it, or C{None}."""
        ban = self.by_id.pop(ban_id, None)
        if ban is None:
            return None
        if ban.user:
            _drop(self.by_user, ban.user, ban_id)
        if ban.network:
            net = ipaddress.ip_network(ban.network)
            level = self.by_network[(net.version, net.prefixlen)]
            _drop(level, int(net.network_address), ban_id)
            if not level:
                del self.by_network[(net.version, net.prefixlen)]
                self._index_levels()
        return ban

    def _index_levels(self) -> None:
        self._levels = {4: [], 6: []}
        for (version, prefixlen), level in self.by_network.items():
            self._levels[version].append(((32 if version == 4 else 128) - prefixlen, level))

    def holding(self, user: str, address: str, now: float) -> Ban | None:
        """The ban in force at C{now} of C{user} or C{address} that ends last, or C{None}."""
        if not self.by_id:
            return None
        found = list(self.by_user.get(user, {}).values())
        ip = _address(address) if self.by_network else None
        if ip is not None:
            number = int(ip)
            for shift, level in self._levels[ip.version]:
                bans = level.get(number >> shift << shift)
                if bans:
                    found.extend(bans.values())
        live = [ban for ban in found if ban.expires_at > now]
        for ban in found:
            if ban.expires_at <= now:
                self.remove(ban.id)
        return max(live, key=lambda ban: ban.expires_at, default=None)

    def expire(self, now: float) -> None:
        for ban in [ban for ban in self.by_id.values() if ban.expires_at <= now]:
            self.remove(ban.id)


def _drop(table: dict[_K, dict[str, Ban]], key: _K, ban_id: str) -> None:
    bans = table[key]
    bans.pop(ban_id, None)
    if not bans:
        del table[key]


class Bans:
    """
    The bans of the daemon: set and lifted by the server API, enforced at
    handshakes (L{refusing}) and on open connections.

    @param hub: the L{aleatoria.domain.hub.Hub}: its connections, its work
        and its observers.
    @param store: the L{aleatoria.domain.safety_ports.IBans}.
    @param seconds: the wall clock, in Unix seconds.
    """

    def __init__(self, hub: Hub, store: IBans, seconds: Callable[[], float] = time.time) -> None:
        self._hub = hub
        self._store = store
        self._now = seconds
        self.index = BanIndex()
        self._during_load: dict[str, Ban | None] | None = None
        """What changed while a load was under way: C{{id: ban or None}}."""
        store.listen(self)

    # The server API

    async def ban(self, *, user: str | None = None, address: str | None = None, seconds: int,
                  reason: str = "") -> Ban:
        """
        Bar C{user}, or the addresses of C{address} (an address or a CIDR
        range), for C{seconds}: kept, told to every daemon, and whatever
        connections it holds closed. Fire with the L{Ban}.

        @raise Invalid: neither or both, a bad address, a bad duration.
        """
        if (user is None) == (address is None):
            raise Invalid("Give userId or address: one of them.")
        if user is not None:
            check_user(user, "userId")
        network = str(network_of(address)) if address is not None else ""
        if not (isinstance(seconds, int) and 1 <= seconds <= MAX_SECONDS):
            raise Invalid(f"seconds is a whole number from 1 to {MAX_SECONDS}.")
        if len(reason) > MAX_REASON:
            raise Invalid(f"reason has at most {MAX_REASON} characters.")
        now = self._now()
        ban = Ban(new_id(now), now, now + seconds, user or "", network, reason)
        await self._hub.work.watch(self._store.add(ban), "ban", asked=True)
        self._hub.tell(Banned(ban.id, ban.user, network, seconds, reason))
        self.set(ban)
        return ban

    async def lift(self, ban_id: str) -> Ban | None:
        """Lift the ban C{ban_id} on every daemon: fire with it, or C{None} if none is in force."""
        ban = await self._hub.work.watch(self._store.lift(ban_id, self._now()), "unban",
                                         asked=True)
        if ban is not None:
            self._hub.tell(Unbanned(ban.id, ban.user, ban.network))
            self.lifted(ban.id)
        return ban

    def all(self) -> Deferred[list[Ban]]:
        """Fire with every ban in force, on every daemon, the newest first."""
        d = self._hub.work.watch(self._store.all(self._now()), "bans", asked=True)
        return d.addCallback(lambda bans: sorted(bans, key=lambda ban: ban.id, reverse=True))

    async def ban_off(self, user: str, seconds: int, reason: str) -> tuple[Ban, bool]:
        """
        Bar C{user} for C{seconds} and close its connection wherever it is:
        fire with the L{Ban} and whether it was connected anywhere.

        @raise TooLarge: a C{reason} longer than a close frame carries, as
            for a disconnect.
        """
        check_user(user, "userId")
        check_reason(reason)
        where = await self._hub.work.watch(self._hub.sessions.whereabouts(user),
                                           "api_read", asked=True)
        return await self.ban(user=user, seconds=seconds, reason=reason), where is not None

    def in_force(self) -> int:
        """How many bans this daemon knows to be in force."""
        self.index.expire(self._now())
        return len(self.index)

    # Handshakes

    def holding(self, user: str, address: str) -> int:
        """The seconds left of the ban that bars C{user} from C{address} (0: none does)."""
        now = self._now()
        ban = self.index.holding(user, address, now)
        return 0 if ban is None else max(1, math.ceil(ban.expires_at - now))

    def refusing(self, user: str, address: str) -> int:
        """L{holding}, for a handshake: what it refuses is told."""
        now = self._now()
        ban = self.index.holding(user, address, now)
        if ban is None:
            return 0
        seconds = max(1, math.ceil(ban.expires_at - now))
        self._hub.tell(HandshakeBanned(ban.id, user, address, seconds))
        return seconds

    # What the store tells (IBans' listener)

    def set(self, ban: Ban) -> None:
        """C{ban} is in force: into the copy, and the connections it bars here closed."""
        if self._during_load is not None:
            self._during_load[ban.id] = ban
        self.index.add(ban)
        self._enforce([ban])

    def lifted(self, ban_id: str) -> None:
        if self._during_load is not None:
            self._during_load[ban_id] = None
        self.index.remove(ban_id)

    def load(self) -> Deferred[bool]:
        """
        Read every ban in force from the store into the copy, keeping what
        changed meanwhile; close the connections they bar. Fires with
        whether it could (a failure is reported).
        """
        self._during_load = {}
        d = self._hub.work.watch(self._store.all(self._now()), "bans")
        return d.addBoth(self._loaded)

    def _loaded(self, bans: object) -> bool:
        changed, self._during_load = self._during_load, None
        if not isinstance(bans, list):
            return False
        index = BanIndex()
        for ban in bans:
            index.add(ban)
        for ban_id, ban in cast(dict[str, Ban | None], changed).items():
            if ban is None:
                index.remove(ban_id)
            else:
                index.add(ban)
        index.expire(self._now())
        self.index = index
        self._enforce(list(index.by_id.values()))
        return True

    def _enforce(self, bans: Iterable[Ban]) -> None:
        """Close the connections here that C{bans} bar."""
        now = self._now()
        live = BanIndex()
        for ban in bans:
            if ban.expires_at > now:
                live.add(ban)
        if not len(live):
            return
        connections = self._hub.connections
        if live.by_network:
            suspects = connections.all()
        else:
            suspects = [c for c in map(connections.get, live.by_user) if c is not None]
        for conn in suspects:
            holding = live.holding(conn.user_id, conn.address, now)
            if holding is not None:
                self._hub.tell(KickedByBan(holding.id, conn.user_id, conn.address))
                conn.kick(CLOSE_REASON)
