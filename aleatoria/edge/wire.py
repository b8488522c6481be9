"""
The envelope (docs/protocol.rst, "The envelope"), and turning client
frames into it.

Everything a client sends is decoded here, once, into typed values: the
domain downstream never sees JSON and never has to doubt a field's type. A
frame that is not a JSON object, or has a field of the wrong type, raises
:class:`InvalidMessage`, which the client gets back as ``error_response``.
Checks that need state (membership, who is online) belong to the domain.
"""

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from aleatoria.domain.rules import MAX_MESSAGE_ID


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True):
    """
    One message, in either direction. Empty fields are left out on the wire.

    C{payload} is whatever the message type carries: a typed struct below
    for the types the server reads, the client's raw JSON for signaling it
    relays untouched, or plain data the server builds.
    """

    type: str
    fromUser: str = ""
    toUser: str = ""
    room: str = ""
    payload: Any = UNSET
    messageId: str = ""
    createTime: str = ""
    incoming: bool | UnsetType = UNSET
    offset: int = 0
    """Its place in its stream (a room's, or a user's inbox): 1, 2, 3..."""
    epoch: str = ""
    """The stream's epoch: it changes when the stream's history is lost or reset."""


class ChatPayload(msgspec.Struct, frozen=True):
    content: str


class PeerRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    currentPeerId: str = ""


class RecentMessagesQuery(msgspec.Struct, frozen=True):
    limit: int = 50
    before: str = ""


class MembersQuery(msgspec.Struct, frozen=True):
    limit: int = 1000
    after: str = ""


class DirectMessagesQuery(msgspec.Struct, frozen=True):
    withUser: str = ""
    limit: int = 50


MAX_OFFSET = 2**53
"""The largest offset a client may name: JavaScript's numbers are exact up to it."""


class Position(msgspec.Struct, frozen=True):
    """Where a client stands in one stream: the last offset it has, of which epoch."""

    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)] = 0
    epoch: Annotated[str, msgspec.Meta(max_length=64)] = ""


class ResumeRequest(msgspec.Struct, frozen=True):
    rooms: dict[str, Position] = {}
    direct: Position | None = None


class ConversationsQuery(msgspec.Struct, frozen=True):
    limit: int = 50
    before: int = 0


class MarkRead(msgspec.Struct, frozen=True):
    withUser: str = ""
    offset: int = 0


class UserRef(msgspec.Struct, frozen=True):
    """The payload of block_user and unblock_user."""

    userId: str = ""


class ReportRequest(msgspec.Struct, frozen=True):
    """The payload of report_user."""

    userId: str = ""
    reason: str = ""
    details: str = ""


SIGNALING_TYPES = frozenset(
    {"webrtc_offer", "webrtc_answer", "webrtc_candidate", "hangup"}
)

_TYPED_PAYLOADS = {
    "chat_message": ChatPayload,
    "call_message": ChatPayload,
    "request_random_peer": PeerRequest,
    "get_recent_messages": RecentMessagesQuery,
    "get_direct_messages": DirectMessagesQuery,
    "get_room_members": MembersQuery,
    "resume": ResumeRequest,
    "get_conversations": ConversationsQuery,
    "mark_read": MarkRead,
    "block_user": UserRef,
    "unblock_user": UserRef,
    "report_user": ReportRequest,
}


class _Inbound(msgspec.Struct, frozen=True):
    """The envelope as a client may send it; the payload still undecoded."""

    type: str
    fromUser: str = ""
    toUser: str = ""
    room: str = ""
    payload: Raw = Raw()
    messageId: str = ""
    createTime: str = ""
    incoming: bool | UnsetType = UNSET


class InvalidMessage(ValueError):
    """A frame that is not a well-formed envelope; the text says why."""


TOO_DEEP = "JSON is nested too deeply"
"""msgspec raises RecursionError, not DecodeError, for ~1 000 levels of nesting."""


_decode_inbound = msgspec.json.Decoder(_Inbound).decode
_payload_decoders = {
    kind: msgspec.json.Decoder(shape).decode for kind, shape in _TYPED_PAYLOADS.items()
}
encode = msgspec.json.Encoder().encode


def decode(frame: bytes) -> Envelope:
    """
    Decode and type-check one client frame.

    C{fromUser}, C{createTime} and C{incoming} are dropped: the server sets
    them. Unknown types pass, for the hub to refuse with its own error.

    @raise InvalidMessage: the frame is not a JSON object of the right shape.
    """
    try:
        inbound = _decode_inbound(frame)
        payload = _decode_payload(inbound.type, inbound.payload)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise InvalidMessage(str(e)) from None
    except RecursionError:
        raise InvalidMessage(TOO_DEEP) from None
    return Envelope(
        type=inbound.type,
        toUser=inbound.toUser,
        room=inbound.room,
        payload=payload,
        messageId=inbound.messageId,
    )


def _decode_payload(kind: str, raw: Raw) -> Any:
    decoder = _payload_decoders.get(kind)
    if decoder is not None:
        try:
            return decoder(raw or b"{}")
        except msgspec.ValidationError as e:
            raise msgspec.ValidationError(_under_payload(str(e))) from None
    if kind in SIGNALING_TYPES:
        if raw and not bytes(raw).startswith(b"{"):
            raise msgspec.ValidationError("Expected `object` - at `$.payload`")
        return raw if raw else UNSET
    return UNSET


def _under_payload(reason: str) -> str:
    """Point a payload decoding error's path at C{$.payload}."""
    if " - at `$" in reason:
        return reason.replace(" - at `$", " - at `$.payload", 1)
    return reason + " - at `$.payload`"


RAW_FRAME_LIMIT = 1024


def truncated(raw: bytes) -> str:
    """A raw frame as it may be reported: at most 1 KiB, as text."""
    return raw[:RAW_FRAME_LIMIT].decode("utf-8", "replace")


class _Named(msgspec.Struct):
    messageId: str = ""


_decode_named = msgspec.json.Decoder(_Named).decode


def message_id_of(frame: bytes) -> str:
    """
    The C{messageId} of a frame refused before it is decoded (over the
    rate limit), so that the refusal names the request it answers; '' if
    it has none, or none that is valid.
    """
    try:
        message_id = _decode_named(frame).messageId
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return ""
    return message_id if len(message_id) <= MAX_MESSAGE_ID else ""
