"""
The ICE servers a client gives its C{RTCPeerConnection}: the STUN URLs
as they are, and the TURN URLs with credentials minted for the moment, as
the TURN REST API has it (what coturn's C{use-auth-secret} checks): the
user name is C{<expiry unix time>:<opaque id>}, the credential
base64(HMAC-SHA1(secret, user name)). The TURN server needs nothing from
the daemon but the shared secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime


def credential(secret: str, username: str) -> str:
    """The password coturn expects with C{username}, under C{static-auth-secret} C{secret}."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class IceServers:
    """
    Mints the payload of C{ice_servers}: C{{"iceServers": [RTCIceServer,
    ...], "ttl": seconds, "expiresAt": RFC 3339}}, fresh at each call.

    The opaque part of a user name is random: a TURN server's logs tie a
    relay to no user of ours, and two credentials to no one user.

    @param stun: STUN URLs, as C{--stun-url} gives them.
    @param turn: TURN URLs; with no C{secret}, none are given out.
    @param secret: the TURN server's C{static-auth-secret}.
    @param ttl: seconds a credential is good for.
    @param seconds: the wall clock (Unix time), as C{reactor.seconds}.
    """

    def __init__(self, stun: Iterable[str] = (), turn: Iterable[str] = (), secret: str = "",
                 ttl: int = 3600, seconds: Callable[[], float] | None = None) -> None:
        self._stun = list(stun)
        self._turn = list(turn) if secret else []
        self._secret = secret
        self._ttl = ttl
        self._seconds = seconds or (lambda: datetime.now(UTC).timestamp())
        self._expiry_text: tuple[int | None, str] = (None, "")

    def fresh(self) -> dict[str, object]:
        expiry = int(self._seconds()) + self._ttl
        servers: list[dict[str, object]] = [{"urls": list(self._stun)}] if self._stun else []
        if self._turn:
            username = f"{expiry}:{secrets.token_urlsafe(12)}"
            servers.append({"urls": list(self._turn), "username": username,
                            "credential": credential(self._secret, username)})
        return {"iceServers": servers, "ttl": self._ttl, "expiresAt": self._expires(expiry)}

    def _expires(self, expiry: int) -> str:
        """C{expiry} in RFC 3339, formatted once a second: every connect is sent it."""
        if self._expiry_text[0] != expiry:
            text = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._expiry_text = (expiry, text)
        return self._expiry_text[1]
