"""
Who a client is, by one of three policies, chosen by the operator:

  - L{DeclaredIds}, the default (the Go server's clients send only
    C{?userId=}): a client is whoever it says it is.
  - L{TokenPolicy}: with a secret (HS256) or a public key (RS256/ES256)
    configured, every client presents C{?token=}, a JWT whose C{sub} is its
    user id, with an expiry. An optional C{rooms} claim -- names, or
    C{prefix*} patterns -- limits which rooms the user may join; an optional
    C{segment} claim puts it in a part of the matchmaking pool of its own.
  - L{Anonymous} (C{--anonymous}): the server names each new client and
    gives it a signed reconnect token, with which it comes back as itself
    and which nobody else can make; the token expires, and every connection
    gets a fresh one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import jwt
from autobahn.websocket.types import ConnectionDeny

from aleatoria.domain.matchmaking import DEFAULT_SEGMENT, MAX_SEGMENT
from aleatoria.domain.rules import SYSTEM, USER_ID_RULE, valid_user_id

_REQUIRED = ["sub", "exp"]


class Settings(Protocol):
    """
    What an identity policy is made of: the daemon's settings (its
    L{aleatoria.daemon.config.Config}, a frozen dataclass).
    """

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def anonymous(self) -> bool: ...

    @property
    def anonymous_secret(self) -> str: ...

    @property
    def anonymous_token_days(self) -> int: ...

    @property
    def jwt_secret(self) -> str: ...

    @property
    def jwt_public_key_file(self) -> str: ...

    @property
    def jwt_audience(self) -> str: ...

    @property
    def jwt_issuer(self) -> str: ...


_Settings = TypeVar("_Settings", bound=Settings)


class InvalidToken(ValueError):
    """The token is missing, malformed, expired or not ours; the text says which."""


@dataclass(frozen=True)
class Identity:
    """Who a token says the client is, and where it may go."""

    user: str
    rooms: tuple[str, ...] | None = None
    segment: str = DEFAULT_SEGMENT
    """The part of the pool the user is paired within (L{aleatoria.domain.matchmaking})."""
    reconnect_token: str | None = None
    """For a server-named client: how it comes back as itself (L{Anonymous})."""

    def may_join(self, room: str) -> bool:
        if self.rooms is None:
            return True
        return any(
            room.startswith(pattern[:-1]) if pattern.endswith("*") else room == pattern
            for pattern in self.rooms
        )


class IdentityPolicy(Protocol):
    """What each policy below does: establish an L{Identity} from a handshake's query."""

    def identify(self, params: Mapping[str, list[str]]) -> Identity: ...


class DeclaredIds:
    """Each client is the C{userId} it gives; nothing proves it."""

    def identify(self, params: Mapping[str, list[str]]) -> Identity:
        """
        The L{Identity} the query C{params} establish.

        @raise ConnectionDeny: 400 without a well-formed C{userId}.
        """
        users = params.get("userId", [])
        if users and users[0].lower() == SYSTEM:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "userId system is reserved")
        if not users:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, f"userId is required: {USER_ID_RULE}")
        if len(users) != 1 or not valid_user_id(users[0]):
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 f"userId must be one id of {USER_ID_RULE}")
        return Identity(users[0])


_TOKEN = re.compile(r"(anon-[0-9a-f]{16})\.([1-9][0-9]{0,11})\.([0-9a-f]{32})\Z")
"""
A reconnect token: an id as the server makes them (C{anon-<16 hex
digits>}, no other), its issue time in Unix seconds, and the MAC.
"""

_DAY = 86400
_SKEW = 300
"""Seconds a token's issue time may lie ahead of this daemon's clock (another's runs fast)."""


class Anonymous:
    """
    The server names each new client C{anon-<16 hex digits>} and gives it
    a reconnect token, C{<user>.<issued>.<mac>}: the user id, the Unix
    time it was issued, and an HMAC-SHA256 of both with C{secret} (which
    every daemon sharing the users must have). C{?reconnectToken=} brings
    a client back as the user the token names -- a ban by user id
    applies to it -- for C{days} after it was issued; each connection gets
    a fresh token, so a client that comes back within that time keeps
    its name.

    @param seconds: the wall clock (tokens outlive restarts and cross daemons).
    """

    def __init__(self, secret: str | bytes, days: int = 30,
                 seconds: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._lifetime = days * _DAY
        self._seconds = seconds

    def identify(self, params: Mapping[str, list[str]]) -> Identity:
        """
        @raise ConnectionDeny: 400 for a C{userId} (the server names
            clients), 401 for a reconnect token that is not ours, names an
            id the server does not make, or has expired.
        """
        if params.get("userId"):
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 "userId is assigned by the server; reconnect with reconnectToken")
        tokens = params.get("reconnectToken", [])
        if len(tokens) > 1:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "one reconnectToken at most")
        user = self._verified(tokens[0]) if tokens else f"anon-{secrets.token_hex(8)}"
        return Identity(user, reconnect_token=self.token(user, int(self._seconds())))

    def token(self, user: str, issued: int) -> str:
        """The reconnect token of C{user}, issued at C{issued} (Unix seconds)."""
        return f"{user}.{issued}.{self._mac(user, issued)}"

    def _verified(self, token: str) -> str:
        """
        The user a token names. Tokens of the first format (C{<user>.<mac>},
        no time) are refused: nothing says how old they are.
        """
        found = _TOKEN.match(token)
        if found is None or not hmac.compare_digest(found[3], self._mac(found[1], found[2])):
            raise ConnectionDeny(
                401, "invalid reconnect token; connect without it for a new identity")
        age = self._seconds() - int(found[2])
        if age > self._lifetime or age < -_SKEW:
            raise ConnectionDeny(401, "reconnect token expired; connect without it")
        return found[1]

    def _mac(self, user: str, issued: int | str) -> str:
        message = f"aleatoria reconnect {user} {issued}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]


def with_anonymous_key(config: _Settings) -> _Settings:
    """
    C{config}, with a random key for anonymous tokens if C{--anonymous} has
    none: made once, by the main process, and handed to its workers (in
    their environment, as the operator's key would be) -- so that a token
    made by one worker is good on every other, and on a worker restarted.
    """
    if config.anonymous and not config.anonymous_secret:
        return dataclasses.replace(config, anonymous_secret=secrets.token_hex(32))
    return config


def policy_from_config(config: Settings) -> TokenPolicy | Anonymous | DeclaredIds:
    """The identity policy the settings ask for."""
    tokens = TokenPolicy.from_config(config)
    if tokens is not None:
        return tokens
    if config.anonymous:
        return Anonymous(config.anonymous_secret or secrets.token_hex(32),
                         config.anonymous_token_days)
    return DeclaredIds()


class TokenPolicy:
    """
    @param key: the HS256 secret, or a PEM public key.
    @param algorithms: those the key may verify.
    """

    def __init__(self, key: str | bytes, algorithms: Iterable[str], audience: str | None = None,
                 issuer: str | None = None) -> None:
        self._key = key
        self._algorithms = list(algorithms)
        self._audience = audience or None
        self._issuer = issuer or None

    @classmethod
    def from_config(cls, config: Settings) -> TokenPolicy | None:
        """The configured policy, or C{None} when tokens are off."""
        if config.jwt_secret:
            return cls(config.jwt_secret, ["HS256"], config.jwt_audience, config.jwt_issuer)
        if config.jwt_public_key_file:
            with open(config.jwt_public_key_file, "rb") as pem:
                key = pem.read()
            return cls(key, ["RS256", "ES256"], config.jwt_audience, config.jwt_issuer)
        return None

    def identify(self, params: Mapping[str, list[str]]) -> Identity:
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

    def verify(self, token: str) -> Identity:
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
        segment = claims.get("segment", DEFAULT_SEGMENT)
        if not isinstance(segment, str) or not 0 < len(segment) <= MAX_SEGMENT:
            raise InvalidToken(
                f"invalid token: segment must be a string of 1 to {MAX_SEGMENT} characters")
        return Identity(user, tuple(rooms) if rooms is not None else None, segment)


def _why(error: jwt.PyJWTError) -> str:
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
