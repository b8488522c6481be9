"""
What the Redis backend keeps and sends, as bytes: a stream's messages in
the Go server's envelope (which it reads back, and which old data has),
and the posts daemons exchange -- a header line, then the push as the
bus's tagged union (L{aleatoria.domain.events.BUS_PUSHES}).

A script numbers what it keeps and tells: it gets each as parts, the
offset and epoch to go between them, so that it never reads or writes
JSON itself (L{kept_parts}, L{post_head}).
"""

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import replace
from twisted.logger import Logger

from aleatoria.domain.events import BUS_PUSHES, BUS_VERSION, DirectMessage, Push, RoomMessage

_M = TypeVar("_M", RoomMessage, DirectMessage)

_log = Logger()


class _Content(msgspec.Struct, frozen=True):
    content: str = ""


class Stored(msgspec.Struct, frozen=True, omit_defaults=True):
    """A kept chat message, as the Go server wrote it (and we, with more fields)."""

    type: str
    fromUser: str = ""
    toUser: str = ""
    room: str = ""
    payload: _Content = _Content()
    messageId: str = ""
    createTime: str = ""
    offset: int = 0
    epoch: str = ""
    positions: dict[str, int] | UnsetType = UNSET
    """A direct message's offset in each party's inbox (in its pair's history)."""


_encode = msgspec.json.Encoder().encode
_decode_stored = msgspec.json.Decoder(Stored).decode


def _stored(message: RoomMessage | DirectMessage) -> Stored:
    if isinstance(message, RoomMessage):
        return Stored("chat_message", fromUser=message.sender, room=message.room,
                      payload=_Content(message.content), messageId=message.message_id,
                      createTime=message.create_time)
    return Stored("chat_message", fromUser=message.sender, toUser=message.recipient,
                  payload=_Content(message.content), messageId=message.message_id,
                  createTime=message.create_time)


def kept_parts(message: RoomMessage | DirectMessage) -> tuple[str, str, str]:
    """
    What a stream keeps of C{message}, in three parts: head, offset,
    middle, epoch, tail.
    """
    text = _encode(_stored(message)).decode()
    return text[:-1] + ',"offset":', ',"epoch":"', '"}'


def pair_parts(message: DirectMessage, has_inbox: bool) -> tuple[str, str, str, str]:
    """
    What a pair's history keeps of a direct message, in four parts, with
    the sender's offset after the second (if it has an inbox: C{system}
    has none) and the recipient's after the third.
    """
    text = _encode(_stored(message)).decode()
    sender = f'"{message.sender}":' if has_inbox else ""
    recipient = f'{"," if has_inbox else ""}"{message.recipient}":'
    return text[:-1] + ',"positions":{', sender, recipient, "}}"


def _messages(entries: Iterable[str | bytes], build: Callable[[Stored], _M]) -> list[_M]:
    found: list[_M] = []
    for entry in entries:
        try:
            stored = _decode_stored(entry.encode() if isinstance(entry, str) else entry)
        except (msgspec.DecodeError, RecursionError) as e:
            _log.warn("Skipped an unreadable stored message: {why}", why=e)
            continue
        found.append(build(stored))
    return found


def room_messages(entries: Iterable[str | bytes]) -> list[RoomMessage]:
    """The L{RoomMessage}s kept as C{entries}."""
    return _messages(entries, lambda s: RoomMessage(
        s.room, s.fromUser, s.payload.content, s.messageId, s.createTime, s.offset, s.epoch))


def direct_messages(entries: Iterable[str | bytes], reader: str | None = None,
                    epoch: str = "") -> list[DirectMessage]:
    """
    The L{DirectMessage}s kept as C{entries}: numbered as they are, or --
    with C{reader}, from a pair's history -- as C{reader}'s inbox (of
    C{epoch}) numbers them.
    """
    def build(s: Stored) -> DirectMessage:
        message = DirectMessage(s.fromUser, s.toUser, s.payload.content, s.messageId,
                                s.createTime, s.offset, s.epoch)
        if reader is not None and s.positions and reader in s.positions:
            return replace(message, offset=s.positions[reader], epoch=epoch)
        return message

    return _messages(entries, build)


# Posts between daemons: "<version> <kind> <origin> <offset> <epoch> <target>\n<push>"

_decode_push = msgspec.json.Decoder(BUS_PUSHES).decode


def post(kind: str, origin: str, target: str, push: Push) -> bytes:
    """A post of C{push} for C{target} (a user, a room), unnumbered."""
    return f"{BUS_VERSION} {kind} {origin} 0 - {target}\n".encode() + _encode(push)


def post_head(kind: str, origin: str) -> str:
    """What a numbered post begins with; the script adds offset, epoch, target and push."""
    return f"{BUS_VERSION} {kind} {origin} "


def push_bytes(push: Push) -> str:
    return _encode(push).decode()


class Unreadable(ValueError):
    """A post this daemon cannot read (another version, or garbage)."""


def read_post(data: bytes | str) -> tuple[str, str, str, Any]:
    """
    C{(kind, origin, target, push)} of a post, the push numbered if the
    post is.

    @raise Unreadable: it is no post this daemon reads.
    """
    data = data.encode() if isinstance(data, str) else bytes(data)
    head, newline, body = data.partition(b"\n")
    try:
        version, kind, origin, offset, epoch, target = head.decode().split(" ", 5)
        if not newline or int(version) != BUS_VERSION:
            raise ValueError(f"version {version}")
        push = _decode_push(body) if body else None
    except (ValueError, UnicodeDecodeError, msgspec.DecodeError, RecursionError) as e:
        raise Unreadable(str(e)) from None
    if int(offset):
        # a numbered post carries a stream message
        push = replace(push, offset=int(offset), epoch=epoch)  # type: ignore[type-var]
    return kind, origin, target, push
