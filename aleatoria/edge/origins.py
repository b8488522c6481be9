"""
Which web pages may open a WebSocket to us (docs/protocol.rst, "Connecting").

Origins are compared as (scheme, host, port) with default ports filled in,
so C{https://x.example} and C{https://x.example:443} are the same origin.
The allowed list is configuration; with none configured, only the daemon's
own origin (what the request's C{Host} names) is allowed -- and only when
that host is loopback or one of the daemon's public host names: otherwise
a page on any name that resolves to the daemon (DNS rebinding) would count
as its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(origin: str) -> tuple[str, str, int] | None:
    """
    C{(scheme, host, port)} of an origin, or C{None} when it is malformed:
    not http(s), no host, a bad port, or anything beyond scheme://host:port.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        return None
    return (parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme])


class OriginPolicy:
    """
    @param allowed: origins to accept; C{"*"} accepts any well-formed one.
    @param allow_missing: accept clients that send no Origin (native apps).
    @param public_hosts: the names the daemon is reached by, for its own
        origin; loopback hosts always count.
    @raise ValueError: an allowed origin is malformed.
    """

    def __init__(self, allowed: Collection[str] = (), allow_missing: bool = False,
                 public_hosts: Iterable[str] = ()) -> None:
        self.allow_any = "*" in allowed
        self.allow_missing = allow_missing
        self._public = {h.lower() for h in public_hosts}
        self._allowed: set[tuple[str, str, int]] = set()
        for origin in allowed:
            if origin == "*":
                continue
            parsed = normalise(origin)
            if parsed is None:
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
            self._allowed.add(parsed)

    def permits(self, origin: str, host: str, secure: bool) -> bool:
        """
        Whether a handshake with header C{Origin: origin} (C{""} when absent),
        asking for C{Host: host} over TLS or not, may proceed.
        """
        if not origin:
            return self.allow_missing
        parsed = normalise(origin)
        if parsed is None:
            return False
        if self.allow_any or parsed in self._allowed:
            return True
        if self._allowed:
            return False
        own = normalise(f"{'https' if secure else 'http'}://{host}")
        return parsed == own and self._ours(own[1])

    def _ours(self, host: str) -> bool:
        if host in self._public or host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
