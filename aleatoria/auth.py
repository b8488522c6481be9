"""
Identity you can trust: signed tokens instead of a self-declared userId.

Off by default (the Go server's clients send only C{?userId=}). With a
secret (HS256) or a public key (RS256/ES256) configured, every client must
present C{?token=}: a JWT whose C{sub} is its user id, with an expiry. An
optional C{rooms} claim -- names, or C{prefix*} patterns -- limits which
rooms the user may join.
"""

from dataclasses import dataclass

import jwt

from .messages import valid_user_id

_REQUIRED = ["sub", "exp"]


class InvalidToken(ValueError):
    """The token is missing, malformed, expired or not ours; the text says which."""


@dataclass(frozen=True)
class Identity:
    """Who a token says the client is, and where it may go."""

    user: str
    rooms: tuple | None = None

    def may_join(self, room):
        if self.rooms is None:
            return True
        return any(
            room.startswith(pattern[:-1]) if pattern.endswith("*") else room == pattern
            for pattern in self.rooms
        )


class TokenPolicy:
    """
    @param key: the HS256 secret, or a PEM public key.
    @param algorithms: those the key may verify.
    """

    def __init__(self, key, algorithms, audience=None, issuer=None):
        self._key = key
        self._algorithms = list(algorithms)
        self._audience = audience or None
        self._issuer = issuer or None

    @classmethod
    def from_config(cls, config):
        """The configured policy, or C{None} when tokens are off."""
        if config.jwt_secret:
            return cls(config.jwt_secret, ["HS256"], config.jwt_audience, config.jwt_issuer)
        if config.jwt_public_key_file:
            with open(config.jwt_public_key_file, "rb") as pem:
                key = pem.read()
            return cls(key, ["RS256", "ES256"], config.jwt_audience, config.jwt_issuer)
        return None

    def verify(self, token):
        """
        The L{Identity} a token proves.

        @raise InvalidToken: it proves nothing.
        """
        try:
            claims = jwt.decode(
                token, self._key, algorithms=self._algorithms, audience=self._audience,
                issuer=self._issuer, options={"require": _REQUIRED},
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(f"invalid token: {e}") from None
        user, rooms = claims["sub"], claims.get("rooms")
        if not isinstance(user, str) or not valid_user_id(user):
            raise InvalidToken("invalid token: sub is not a user id")
        if rooms is not None and not (
            isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)
        ):
            raise InvalidToken("invalid token: rooms must be a list of names")
        return Identity(user, tuple(rooms) if rooms is not None else None)
