"""
Signing webhooks as the Standard Webhooks specification says
(https://www.standardwebhooks.com), so that an app verifies them with one
of its libraries: C{webhook-id}, C{webhook-timestamp} (Unix seconds) and
C{webhook-signature}: C{v1,} and the base64 of the HMAC-SHA256 of
C{id.timestamp.body} under the key the C{whsec_} secret encodes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def message_id() -> str:
    """A fresh C{webhook-id}: the app's receiver uses it to ignore a repeat."""
    return "msg_" + base64.urlsafe_b64encode(os.urandom(18)).decode()


class Signer:
    """@param secret: C{whsec_} and the base64 of the key, padded or not (checked before)."""

    def __init__(self, secret: str) -> None:
        encoded = secret.removeprefix("whsec_")
        self._key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))

    def headers(self, message_id: str, timestamp: float, body: bytes) -> dict[bytes, list[bytes]]:
        """
        The headers of one attempt at sending C{body} (bytes), made at
        C{timestamp} (Unix seconds): each retry is signed anew, with its
        own time and the same id, so that receivers' replay windows (5
        minutes, as a rule) still take it.
        """
        stamp = str(int(timestamp))
        signed = f"{message_id}.{stamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return {
            b"webhook-id": [message_id.encode()],
            b"webhook-timestamp": [stamp.encode()],
            b"webhook-signature": [b"v1," + base64.b64encode(digest)],
            b"content-type": [b"application/json"],
            b"user-agent": [b"Aleatoria-Webhooks"],
        }
