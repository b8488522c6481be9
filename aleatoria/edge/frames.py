"""
Autobahn as Aleatoria uses it: the one place that reaches into its
internals -- and into Twisted's beneath it (twisted.web's channel under
Autobahn's WebSocketResource, a TCP transport's buffer) -- each pinned by
C{tests/unit/test_wsframes.py}.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pprint import pformat
from types import FunctionType
from typing import TYPE_CHECKING, Any, TypeVar

from autobahn import util as _util
from autobahn.twisted import websocket as _twisted_adapter
from autobahn.websocket import protocol as _autobahn
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.xormasker import create_xor_masker

from aleatoria.edge.wire import encode

if TYPE_CHECKING:
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.websocket.compress_base import PerMessageCompress
    from autobahn.websocket.protocol import FrameHeader
    from autobahn.websocket.types import ConnectionDeny
    from twisted.internet.interfaces import IDelayedCall, IProducer, ITransport

    from aleatoria.edge.wire import Envelope

    _Protocol = WebSocketServerProtocol
    """What the mixins below are mixed into, as mypy reads them."""
    _P = TypeVar("_P", bound=WebSocketServerProtocol)
else:
    _Protocol = object


class _Later:
    """C{render(value)} when (and only if) a log line shows it."""

    __slots__ = ("_render", "_value")

    def __init__(self, render: Callable[[Any], str], value: object) -> None:
        self._render = render
        self._value = value

    def __str__(self) -> str:
        return self._render(self._value)

    __repr__ = __str__


def _later(render: Callable[[Any], str]) -> Callable[[object], _Later]:
    return lambda value: _Later(render, value)


def lazy_debug_lines() -> None:
    """
    Autobahn builds the arguments of its debug lines whether or not they
    are logged: it pretty-prints every new connection's settings (a fifth
    of the CPU of a connect, by cProfile), and colours the names in its
    handshake's lines (fourteen terminal styles a connect) and the peer and
    sizes of every chunk received. Have it build them only when shown.
    """
    # each a stand-in for Autobahn's function: a string when it is shown
    _autobahn.pformat = _later(pformat)  # type: ignore[assignment]
    for module in (_autobahn, _twisted_adapter):
        module.hltype = _later(_util.hltype)  # type: ignore[attr-defined]  # a stand-in too
        module.hlval = _later(_util.hlval)  # type: ignore[attr-defined]  # likewise


def prepare(payload: bytes) -> PreparedMessage:
    """Frame a text message once, to send on any number of connections."""
    return PreparedMessage(payload, False, False, False)


def prepare_envelope(envelope: Envelope) -> PreparedMessage:
    """Encode and frame an L{aleatoria.edge.wire.Envelope} once, for any number of connections."""
    return prepare(encode(envelope))


class DirectWrites(_Protocol):
    """Mixed into a WebSocketServerProtocol, on the hot path of every delivery."""

    logOctets: bool

    send_queue: deque[Any] = ()  # type: ignore[assignment]  # empty, as a deque would be
    """
    Autobahn's queue of chopped or synchronous sends, which the daemon
    never makes: a connection gets its own (a deque, 760 bytes of each
    connection) only for one.
    """

    def _connectionMade(self) -> None:
        super()._connectionMade()
        del self.send_queue

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if (sync or chopsize) and "send_queue" not in vars(self):
            self.send_queue = deque()
        super().sendData(data, sync, chopsize)

    def write_prepared(self, prepared: PreparedMessage) -> None:
        """
        Send a prepared frame: straight to the transport when nothing can
        reorder it (no compression, nothing queued, no octet logging).
        Autobahn's sendData would do the same write, after building the
        arguments of a debug log line per call, which cost a third of the
        time of a room fan-out (py-spy).
        """
        if self._perMessageCompress is None and not self.send_queue and not self.logOctets:
            # open: it has a transport
            self.transport.write(prepared.payloadHybi)  # type: ignore[union-attr]
        else:
            self.sendPreparedMessage(prepared)


_SMALL = 1024
"""Payloads up to this size are unmasked as one integer: quicker than NVX's setup."""


def unmask(mask: bytes, data: bytes) -> bytes:
    """C{data} unmasked with the four bytes of C{mask} (RFC 6455, 5.3)."""
    n = len(data)
    if n > _SMALL:
        return create_xor_masker(mask, n).process(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class LeanFrames(_Protocol):
    """
    Mixed into a WebSocketServerProtocol (before L{FrameMeter}): the
    common frame -- a whole, unfragmented, masked text frame under the
    size limits, its payload valid UTF-8, between messages, no compression
    -- is read here, metered, unmasked and handed to C{onMessage} in one
    step. Autobahn's per-frame state machine (a masker, a validator and
    five callbacks a frame) cost half of a relay's CPU (cProfile). Every
    other frame -- control, fragmented, binary, oversized, invalid,
    incomplete -- goes to Autobahn untouched, which answers it as before
    (1002, 1007, 1009; tests/test_autobahn_suite.py holds both paths to
    RFC 6455).
    """

    # What it reads of Autobahn's state, as it is. From Autobahn's code mypy
    # infers less -- a current frame never None, the other two always None --
    # and would read the checks below as settled, and what follows as dead.
    current_frame: FrameHeader | None  # type: ignore[assignment]  # between frames
    _perMessageCompress: PerMessageCompress | None  # type: ignore[assignment]  # off
    autoPingTimeoutCall: IDelayedCall | None  # type: ignore[assignment]  # no ping out
    logFrames: bool
    maxFramePayloadSize: int
    maxMessagePayloadSize: int
    utf8validateIncoming: bool
    autoPingRestartOnAnyTraffic: bool
    frame_refused: Callable[[int], str | None]
    refuse_frame: Callable[[str], None]

    def processData(self) -> bool:
        data = self.data
        if (len(data) < 6 or data[0] != 0x81 or self.current_frame is not None
                or self.inside_message or self._perMessageCompress is not None
                or self.state != self.STATE_OPEN or self.logFrames):
            return super().processData()
        length = data[1] ^ 0x80  # the mask bit set, or this is past 127
        if length < 126:
            start = 2
        elif length == 126 and len(data) >= 8:
            length, start = int.from_bytes(data[2:4], "big"), 4
            if length < 126:
                return super().processData()
        else:
            return super().processData()
        end = start + 4 + length
        if (len(data) < end or 0 < self.maxFramePayloadSize < length
                or 0 < self.maxMessagePayloadSize < length):
            return super().processData()
        payload = unmask(data[start:start + 4], data[start + 4:end])
        if self.utf8validateIncoming:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                return super().processData()
        reason = self.frame_refused(1)
        if reason is not None:
            self.refuse_frame(reason)
            return False
        self.data = data[end:]
        stats = self.trafficStats
        stats.incomingOctetsWebSocketLevel += length
        stats.incomingOctetsAppLevel += length
        stats.incomingWebSocketFrames += 1
        stats.incomingWebSocketMessages += 1
        if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
            self._cancelAutoPingTimeoutCall()
        self.onMessage(payload, False)
        return len(self.data) > 0


class FrameMeter(_Protocol):
    """
    Mixed into a WebSocketServerProtocol: every frame a client sends --
    text, continuation, ping, pong, close -- is offered to
    C{frame_refused(opcode)} as soon as its header is read. When that names
    a reason, the client gets close 1008 with it, and nothing more it sent
    is read: Autobahn stops parsing a closed connection's buffer.
    """

    frame_refused: Callable[[int], str | None]

    def onFrameBegin(self) -> None:
        reason = self.frame_refused(self.current_frame.opcode)
        if reason is None:
            super().onFrameBegin()
        else:
            self.refuse_frame(reason)

    def refuse_frame(self, reason: str) -> None:
        """Close 1008 with C{reason}, reading nothing more."""
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=1008, reasonUtf8=reason.encode()[:123])
        self.dropConnection(abort=False)


def queued(transport: ITransport) -> int:
    """
    Bytes written to C{transport} that Twisted still holds, not yet taken by
    the kernel (its FileDescriptor's buffer; under TLS, the TCP transport's
    beneath). How a backlog tells a slow reader from one that stopped.
    """
    while not hasattr(transport, "dataBuffer") and hasattr(transport, "transport"):
        transport = transport.transport
    # a FileDescriptor's: its buffer is no part of any interface
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen  # type: ignore[attr-defined]


HANDSHAKE_ATTRIBUTES = ("http_request_data", "http_status_line", "http_headers",
                        "http_request_uri", "http_request_path", "http_request_params",
                        "http_request_host", "http_response_data")
"""What Autobahn keeps of the upgrade's request and response for the life of the connection."""


def sharing_options(protocol_class: type[_P], factory: WebSocketServerFactory) -> type[_P]:
    """
    A subclass of C{protocol_class} that holds C{factory}'s protocol
    options (Autobahn's C{CONFIG_ATTRS}) as class attributes: Autobahn
    copies every option into each connection that does not have it
    already -- 29 entries, about 1 KB of each connection's dict.
    """
    # named as the class it derives from: its loggers' namespace is the log's "source"
    options: dict[str, object] = {"__module__": protocol_class.__module__,
                                  "__qualname__": protocol_class.__qualname__}
    for name in protocol_class.CONFIG_ATTRS:
        value = getattr(factory, name)
        # a function (perMessageCompressionAccept) is a value here, not a method
        options[name] = staticmethod(value) if isinstance(value, FunctionType) else value
    return type(protocol_class.__name__, (protocol_class,), options)


def forget_handshake(protocol: WebSocketServerProtocol) -> None:
    """
    Drop what Autobahn keeps of the handshake once the connection is open
    -- the request's bytes, headers and query, the response's bytes:
    about 2 KB of each idle connection that nothing reads again.
    """
    for name in HANDSHAKE_ATTRIBUTES:
        setattr(protocol, name, None)


def take_producer(protocol: WebSocketServerProtocol, producer: IProducer) -> None:
    """
    Under WebSocketResource the HTTP channel is still the transport's
    producer (and pauses reading when the transport's buffer fills): put
    C{producer} in its place, to hear when the client stops reading.
    """
    # open, over TCP (or TLS): a transport that is a consumer too
    protocol.transport.unregisterProducer()  # type: ignore[union-attr]
    protocol.transport.registerProducer(producer, True)  # type: ignore[union-attr]  # as above


class JsonRefusals(_Protocol):
    """
    Mixed into a WebSocketServerProtocol: a refused handshake is answered
    with the standard status line (Autobahn puts its reason there, which may
    carry the request's own data) and the reason in a JSON body, C{{"error":
    reason, "code": ...}}, the codes from C{refusal_codes} -- or, when the
    refusal it answers (C{denied}) says more, its C{body} and C{headers}.
    """

    refusal_codes: dict[int, str] = {}
    denied: ConnectionDeny | None = None

    def sendHttpErrorResponse(self, code: int, reason: str,
                              responseHeaders: Sequence[tuple[str, str]] | None = None) -> None:
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        more = getattr(self.denied, "body", {}) if getattr(self.denied, "code", 0) == code else {}
        if more:
            # a refusal that says more has headers too (L{aleatoria.edge.bans.Banned})
            responseHeaders = [*(responseHeaders or ()),
                               *self.denied.headers]  # type: ignore[union-attr]
        body = json.dumps({"error": reason, "code": self.refusal_codes.get(code, "refused"),
                           **more})
        head = [f"HTTP/1.1 {code} {phrase}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close",
                "X-Content-Type-Options: nosniff"]
        head += [f"{name}: {value}" for name, value in responseHeaders or ()]
        self.sendData(("\r\n".join(head) + "\r\n\r\n" + body).encode())
