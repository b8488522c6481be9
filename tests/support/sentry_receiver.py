"""
A real HTTP endpoint that receives what sentry-sdk sends: it decodes the
gzip-compressed envelopes POSTed to C{/api/<project>/envelope/} into items.
"""

import gzip
import json

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from .lifecycle_helpers import until


def parse_envelope(body):
    """The items of one envelope, as C{(item header, payload)} pairs."""
    lines = body.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        header_line, rest = rest.split(b"\n", 1)
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1:]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, json.loads(payload) if payload else None))
    return items


class _Envelopes(Resource):
    isLeaf = True

    def __init__(self, receiver):
        super().__init__()
        self._receiver = receiver

    def render_POST(self, request):
        body = request.content.read()
        encoding = request.getHeader(b"content-encoding")
        if encoding == b"gzip":
            body = gzip.decompress(body)
        elif encoding:
            raise ValueError(f"unexpected content-encoding {encoding!r}")
        self._receiver.items.extend(parse_envelope(body))
        return b"{}"


class SentryReceiver:
    """Listens on a free loopback port; C{dsn} points sentry-sdk at it."""

    def __init__(self):
        self.items = []
        self._port = reactor.listenTCP(0, Site(_Envelopes(self)), interface="127.0.0.1")
        self.dsn = f"http://public@127.0.0.1:{self._port.getHost().port}/1"

    def stop(self):
        return self._port.stopListening()

    def events(self, **match):
        """Error and message events (not transactions) whose tags include C{match}."""
        return [p for h, p in self.items if h.get("type") == "event"
                and all(p.get("tags", {}).get(k) == v for k, v in match.items())]

    def transactions(self):
        return [p for h, p in self.items if h.get("type") == "transaction"]

    async def event(self, **match):
        """Wait (bounded) for an event with these tags; return it."""
        await until(lambda: self.events(**match))
        return self.events(**match)[-1]
