"""
Who a client is, by one of three policies, chosen by the operator:

- L{DeclaredIds}, the default (the Go server's clients send only
  C{?userId=}): a client is whoever it says it is.
- L{TokenPolicy}: with a secret (HS256) or a public key (RS256/ES256)
  configured, every client presents C{?token=}, a JWT whose C{sub} is its
  user id, with an expiry. An optional C{rooms} claim -- names, or
  C{prefix*} patterns -- limits which rooms the user may join.
- L{Anonymous} (C{--anonymous}): the server names each new client and
  gives it a signed reconnect token, with which it comes back as itself
  and which nobody else can make.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt
from autobahn.websocket.types import ConnectionDeny

from .messages import SYSTEM, USER_ID_RULE, valid_user_id

_REQUIRED = ["sub", "exp"]


class InvalidToken(ValueError):
    """The token is missing, malformed, expired or not ours; the text says which."""


@dataclass(frozen=True)
class Identity:
    """Who a token says the client is, and where it may go."""

    user: str
    rooms: tuple | None = None
    reconnect_token: str | None = None
    """For a server-named client: how it comes back as itself (L{Anonymous})."""

    def may_join(self, room):
        if self.rooms is None:
            return True
        return any(
            room.startswith(pattern[:-1]) if pattern.endswith("*") else room == pattern
            for pattern in self.rooms
        )


class DeclaredIds:
    """Each client is the C{userId} it gives; nothing proves it."""

    def identify(self, params):
        """
        The L{Identity} the query C{params} establish.

        @raise ConnectionDeny: 400 without a well-formed C{userId}.
        """
        users = params.get("userId", [])
        if users and users[0].lower() == SYSTEM:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "userId system is reserved")
        if len(users) != 1 or not valid_user_id(users[0]):
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, f"userId is required: {USER_ID_RULE}")
        return Identity(users[0])


class Anonymous:
    """
    The server names each new client C{anon-<random>} and signs the name
    (HMAC-SHA256 with C{secret}, which every daemon sharing the users must
    have): C{?reconnectToken=} brings a client back as itself.
    """

    def __init__(self, secret):
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def identify(self, params):
        """
        @raise ConnectionDeny: 400 for a C{userId} (the server names
            clients), 401 for a reconnect token that is not ours.
        """
        if params.get("userId"):
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 "userId is assigned by the server; reconnect with reconnectToken")
        tokens = params.get("reconnectToken", [])
        if len(tokens) > 1:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "one reconnectToken at most")
        user = self._verified(tokens[0]) if tokens else f"anon-{secrets.token_hex(8)}"
        return Identity(user, reconnect_token=f"{user}.{self._mac(user)}")

    def _verified(self, token):
        user, _, mac = token.rpartition(".")
        if not valid_user_id(user) or not hmac.compare_digest(mac, self._mac(user)):
            raise ConnectionDeny(401, "invalid reconnect token")
        return user

    def _mac(self, user):
        return hmac.new(self._secret, user.encode(), hashlib.sha256).hexdigest()[:32]


def policy_from_config(config):
    """The identity policy the settings ask for."""
    tokens = TokenPolicy.from_config(config)
    if tokens is not None:
        return tokens
    if config.anonymous:
        return Anonymous(config.anonymous_secret or secrets.token_hex(32))
    return DeclaredIds()


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

    def identify(self, params):
        """
        @raise ConnectionDeny: 401 for a missing or bad token, or a
            C{userId} that disagrees with it.
        """
        presented = params.get("token", [])
        if len(presented) != 1:
            raise ConnectionDeny(401, "token required")
        try:
            identity = self.verify(presented[0])
        except InvalidToken as e:
            raise ConnectionDeny(401, str(e)) from None
        users = params.get("userId", [])
        if users and users != [identity.user]:
            raise ConnectionDeny(401, "userId does not match the token")
        return identity

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
            raise InvalidToken(f"invalid token: {_why(e)}") from None
        user, rooms = claims["sub"], claims.get("rooms")
        if not isinstance(user, str) or not valid_user_id(user):
            raise InvalidToken("invalid token: sub is not a user id")
        if rooms is not None and not (
            isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)
        ):
            raise InvalidToken("invalid token: rooms must be a list of names")
        return Identity(user, tuple(rooms) if rooms is not None else None)


def _why(error):
    """
    What was wrong with a token, in words of our own: PyJWT's messages
    can show its internals (key types, generator objects).
    """
    for kind, why in _WHY:
        if isinstance(error, kind):
            return why
    return "not signed by a key of ours, or malformed"


_WHY = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not valid yet"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.MissingRequiredClaimError, "sub and exp are required"),
)
