"""
How the text of a setting becomes its value: one parser per kind, each
raising C{ValueError} with a sentence that says what is wrong (the caller,
L{aleatoria.daemon.config}, says which setting).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from urllib.parse import urlsplit

from aleatoria.edge.origins import OriginPolicy


def port(text: str) -> str:
    """A bare port number listens on every interface; else an endpoint."""
    text = text.strip()
    if text.isdigit():
        number = int(text)
        if not 0 <= number <= 65535:
            raise ValueError("a port number is 0-65535")
        return f"tcp:{number}"
    if not text:
        raise ValueError("give a port number or an endpoint such as tcp:8085")
    return text


def optional_port(text: str) -> str:
    """Empty (none), or what L{port} takes."""
    return port(text) if text.strip() else ""


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return text

    return parse


def whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError("not a whole number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def number(low: float, high: float | None = None, *, low_allowed: bool = False,
           what: str = "a number") -> Callable[[str], float]:
    """A float above C{low} (or from it, with C{low_allowed}), at most C{high}."""
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"not {what}") from None
        if number < low or (number == low and not low_allowed):
            raise ValueError(f"must be {'at least' if low_allowed else 'more than'} {low}")
        if high is not None and number > high:
            raise ValueError(f"must be at most {high}")
        return number

    return parse


seconds = number(0, what="a number of seconds")


def flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("use true or false")


def whole_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = whole(low)(text)
        if number > high:
            raise ValueError(f"must be at most {high}")
        return number

    return parse


def text(text: str) -> str:
    return text


SECRET_BYTES = 32

DOCUMENTED_SECRETS = frozenset({"change-me"})
"""
Values the documentation has shown for a secret, in this version or an
earlier one: the first ones an attacker tries (tests/unit/test_options.py keeps
this list and the documents in step).
"""


class SecretRefused(ValueError):
    """A secret unfit for use; the sentence does not repeat it."""


def secret(text: str) -> str:
    """
    Empty (none), or a secret: at least L{SECRET_BYTES} bytes of UTF-8 --
    short ones fall to a wordlist or a brute force -- and none the
    documentation shows. One rule for every key and token the daemon takes.
    """
    if not text:
        return text
    if text in DOCUMENTED_SECRETS:
        raise SecretRefused("is an example from the documentation: make one of your own, "
                            f"e.g. with openssl rand -hex {SECRET_BYTES}")
    if len(text.encode()) < SECRET_BYTES:
        raise SecretRefused(f"has {len(text.encode())} bytes; a secret needs at least "
                            f"{SECRET_BYTES} (make one with openssl rand -hex {SECRET_BYTES})")
    return text


def host(text: str) -> str:
    if not text.strip():
        raise ValueError("give a host name or address")
    return text.strip()


def readable_file(text: str) -> str:
    if text and not os.access(text, os.R_OK):
        raise ValueError("no readable file there")
    return text


def dsn(text: str) -> str:
    if text:
        from sentry_sdk.utils import BadDsn, Dsn

        try:
            Dsn(text)
        except BadDsn as e:
            raise ValueError(f"not a Sentry DSN ({e})") from None
    return text


def networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks: list[IPv4Network | IPv6Network] = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return tuple(networks)


def host_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    for name in names:
        if any(c in name for c in "/:@ "):
            raise ValueError(f"not a host name: {name!r}")
    return names


def origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in text.split(",") if o.strip())
    OriginPolicy(origins)
    return origins


_ICE_URL = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(?P<port>[0-9]{1,5}))?"
                      r"(\?transport=(udp|tcp))?")


def ice_urls(*schemes: str) -> Callable[[str], tuple[str, ...]]:
    """
    Comma-separated STUN or TURN URLs (RFC 7064, 7065) of the given
    C{schemes}: a host, an optional port and, for TURN, an optional
    C{?transport=udp} or C{tcp} -- what a browser's C{RTCIceServer} takes.
    """
    def parse(text: str) -> tuple[str, ...]:
        urls = tuple(u.strip() for u in text.split(",") if u.strip())
        for url in urls:
            scheme, colon, rest = url.partition(":")
            if not colon or scheme not in schemes:
                raise ValueError(f"{url!r} is no {' or '.join(s + ':' for s in schemes)} URL")
            found = _ICE_URL.fullmatch(rest)
            if (found is None or (found["port"] and not 0 < int(found["port"]) < 65536)
                    or ("?" in rest and not scheme.startswith("turn"))):
                raise ValueError(f"{url!r}: say {schemes[0]}:host[:port]"
                                 + ("[?transport=udp|tcp]" if scheme.startswith("turn") else ""))
        return urls

    return parse


def addresses(text: str) -> tuple[tuple[str, int], ...]:
    """C{host:port} items, comma-separated (C{[v6]:port} for an IPv6 address)."""
    found: list[tuple[str, int]] = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        host, colon, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not host:port: {item!r}")
        found.append((host, int(port)))
    return tuple(found)
def urls(text: str) -> tuple[str, ...]:
    """Comma-separated http or https URLs, each with a host."""
    found = tuple(u.strip() for u in text.split(",") if u.strip())
    for url in found:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises on a bad port
        except ValueError:
            raise ValueError(f"not a URL: {url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http or https URL: {url!r}")
    return found


WEBHOOK_KEY_BYTES = (24, 64)
"""The length of a Standard Webhooks key, decoded: what its libraries make."""


def webhook_secret(text: str) -> str:
    """
    Empty (none), or a Standard Webhooks secret: C{whsec_} and the base64
    of 24 to 64 random bytes -- its key's length is what counts, not the
    text's -- and none the documentation shows.
    """
    if not text:
        return text
    make = "make one with: whsec_$(openssl rand -base64 32)"
    if not text.startswith("whsec_"):
        raise SecretRefused(f"must be whsec_ and the base64 of 24-64 random bytes ({make})")
    try:
        encoded = text.removeprefix("whsec_")
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise SecretRefused(f"is not whsec_ and base64 ({make})") from None
    low, high = WEBHOOK_KEY_BYTES
    if not low <= len(key) <= high:
        raise SecretRefused(f"decodes to {len(key)} bytes; a key has {low}-{high} ({make})")
    if text in DOCUMENTED_SECRETS:
        raise SecretRefused(f"is an example from the documentation ({make})")
    return text
