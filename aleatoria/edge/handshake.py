"""
Who may open C{/ws}: an allowed C{Origin}, a valid C{room}, an identity
(by the policy of L{aleatoria.edge.auth}), and the client's address as far as
trusted proxies tell it. Plain checks on the upgrade request, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Protocol

from autobahn.websocket.types import ConnectionDeny

from aleatoria.domain.rules import ROOM_NAME_RULE, valid_room

if TYPE_CHECKING:
    from aleatoria.edge.auth import Identity, IdentityPolicy
    from aleatoria.edge.origins import OriginPolicy

DEFAULT_ROOM = "Lobby"


class UpgradeRequest(Protocol):
    """
    An upgrade request as the checks read it: Autobahn's
    C{ConnectionRequest}, or what stands for one (the plain GET of C{/ws}).
    """

    @property
    def peer(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def params(self) -> Mapping[str, list[str]]: ...

    @property
    def origin(self) -> str | None: ...


def admit(request: UpgradeRequest, origins: OriginPolicy, secure: bool,
          identities: IdentityPolicy, proxied: bool = False) -> tuple[Identity, str]:
    """
    Check a handshake: an allowed C{Origin}, a valid C{room}, and the
    identity C{identities} (an identity policy of L{aleatoria.edge.auth})
    establishes from the query. Return the L{Identity} and the room.

    C{proxied}: the request came through a trusted proxy, whose
    X-Forwarded-Proto and X-Forwarded-Host say how the page reached it.

    @raise ConnectionDeny: 400 for bad parameters, 401 for a missing or bad
        token, 403 for a refused origin or a room the token does not allow.
    """
    host = request.headers.get("host", "")
    if proxied:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        secure = proto == "https" if proto else secure
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip() or host
    if not origins.permits(request.origin or "", host, secure):
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "origin not allowed")
    rooms = request.params.get("room", [DEFAULT_ROOM])
    if len(rooms) != 1 or not valid_room(rooms[0]):
        raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, f"room must be {ROOM_NAME_RULE}")
    identity = identities.identify(request.params)
    if not identity.may_join(rooms[0]):
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "room not allowed by the token")
    return identity, rooms[0]


def client_address(request: UpgradeRequest,
                   trusted: Iterable[IPv4Network | IPv6Network]) -> str:
    """
    The client's IP address: the peer's, or -- when the peer is a trusted
    proxy -- the nearest address in X-Forwarded-For that is not one. An
    IPv4-mapped IPv6 address counts as the IPv4 one; a forwarded value
    that is no address breaks the chain: the nearest hop proven so far is
    the client.
    """
    peer = _address(request.peer)
    address = _ip(peer)
    if address is None:
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if not forwarded or not _trusted(address, trusted):
        return str(address)
    for hop in reversed(forwarded.split(",")):
        ip = _ip(hop.strip())
        if ip is None:
            break
        address = ip
        if not _trusted(ip, trusted):
            break
    return str(address)


def direct_address(host: str, trusted: Iterable[IPv4Network | IPv6Network]) -> str | None:
    """
    The address of a peer C{host} that is a client itself: C{None} for a
    trusted proxy (its clients are told apart by X-Forwarded-For later), or
    for what is no IP address (a Unix socket).
    """
    ip = _ip(host)
    if ip is None or _trusted(ip, trusted):
        return None
    return str(ip)


def proxied(request: UpgradeRequest, trusted: Iterable[IPv4Network | IPv6Network]) -> bool:
    """Whether the request comes from a trusted proxy."""
    ip = _ip(_address(request.peer))
    return ip is not None and _trusted(ip, trusted)


def _ip(text: str) -> IPv4Address | IPv6Address | None:
    """The address C{text} names (IPv4-mapped ones as IPv4), or C{None}."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def _trusted(ip: IPv4Address | IPv6Address,
             networks: Iterable[IPv4Network | IPv6Network]) -> bool:
    return any(ip in network for network in networks)


def first(values: Sequence[str] | None) -> str:
    """The first value of a query parameter, or ''."""
    return values[0] if values else ""


def _address(peer: str) -> str:
    """C{tcp4:1.2.3.4:5678} -> C{1.2.3.4}."""
    parts = peer.split(":")
    return ":".join(parts[1:-1]) if len(parts) > 2 else peer
