"""
What a name, a message or a request must be, stated once: the domain
checks with these functions, and the edge, the server API and its
OpenAPI document take the same constraints (L{UserId}, L{RoomName}).
"""

import re
from typing import Annotated
from unicodedata import category, is_normalized

from msgspec import Meta

from aleatoria.domain.refusals import Invalid, TooLarge

SYSTEM = "system"
"""Who the server itself is: the sender of what it originates; no user may be called so."""

USER_ID_PATTERN = r"^[A-Za-z0-9_\-.:@]{1,64}$"
USER_ID_RULE = "1-64 letters, digits or _ - . : @"
_USER_ID = re.compile(USER_ID_PATTERN)

MAX_ROOM_NAME = 100
ROOM_NAME_RULE = (
    "1-100 characters in Unicode NFC, without control, format (zero-width, "
    "bidirectional), line or paragraph separator, private-use or unassigned "
    "characters, not starting with a combining mark"
)
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""
Unicode categories no room name may hold: characters that show as
nothing, or as something else, and so make one name read as another.
"""

MAX_MESSAGE_ID = 128
MAX_REASON = 123
"""Bytes of a close reason: what a WebSocket close frame has room for."""

UserId = Annotated[str, Meta(pattern=USER_ID_PATTERN, description=USER_ID_RULE)]
RoomName = Annotated[str, Meta(min_length=1, max_length=MAX_ROOM_NAME,
                               description=ROOM_NAME_RULE)]
Reason = Annotated[str, Meta(extra_json_schema={
    "maxLength": MAX_REASON, "description": f"At most {MAX_REASON} bytes of UTF-8."})]
"""A close reason: its bytes are checked by L{check_reason} (refused as too large)."""


def valid_user_id(text: str) -> bool:
    """L{USER_ID_RULE}, and never L{SYSTEM} in any case."""
    return _USER_ID.match(text) is not None and text.lower() != SYSTEM


def valid_room(text: str) -> bool:
    """
    L{ROOM_NAME_RULE}: one name never reads as another. Cheap for the
    names of every join and room message: C{isprintable} (in C) passes
    most names whole, and plain ASCII needs no more.
    """
    if not 0 < len(text) <= MAX_ROOM_NAME:
        return False
    if not text.isprintable() and any(category(c) in _INVISIBLE for c in text):
        return False
    if text.isascii():
        return True
    return category(text[0])[0] != "M" and is_normalized("NFC", text)


def check_user(text: str, field: str = "toUser", system: bool = False) -> None:
    """
    @raise Invalid: C{text} (named C{field} to the client) is no user id
        (C{system} is allowed where C{system} says so).
    """
    if not (valid_user_id(text) or system and text == SYSTEM):
        if text.lower() == SYSTEM:
            raise Invalid(f"{field} {shown(text)} is the server's own: no user is called so.")
        raise Invalid(f"{field} {shown(text)} is not a user id ({USER_ID_RULE}).")


def check_room(text: str) -> None:
    """@raise Invalid: C{text} is no room name."""
    if not valid_room(text):
        raise Invalid(f"A room name is {ROOM_NAME_RULE}.")


def check_limit(limit: int) -> None:
    """@raise Invalid: a page of fewer than one."""
    if limit < 1:
        raise Invalid("limit must be at least 1.")


def check_content(content: str, max_content: int) -> None:
    """
    What every chat message's content needs, a client's or the server
    API's: some, and at most C{max_content} UTF-8 bytes.

    @raise Invalid: it is empty.
    @raise TooLarge: it is longer.
    """
    if not content:
        raise Invalid("A chat message needs content.")
    if len(content) * 4 > max_content and len(content.encode()) > max_content:
        raise TooLarge(f"A chat message has at most {max_content} bytes.")


def check_reason(reason: str) -> None:
    """@raise TooLarge: more than a close frame carries."""
    if len(reason.encode()) > MAX_REASON:
        raise TooLarge(f"reason has at most {MAX_REASON} bytes.")


SHOWN = 64
"""The most characters of a client's string that a log line or an answer quotes."""


def shown(text: str | None) -> str:
    """
    A client's string as a log line or an answer may quote it: cut to
    L{SHOWN} characters and written as a literal (control characters
    escaped), so that nobody can flood the log or forge lines in it.
    """
    text = text or ""
    cut = text[:SHOWN]
    return repr(cut) + ("..." if len(text) > SHOWN else "")
