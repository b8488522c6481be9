"""
Confusable room names are refused by a running daemon: at join, at chat and at the handshake.
"""

from urllib.parse import quote

import pytest
import pytest_twisted

from ..unit.test_room_names import CONFUSABLE
from .test_handshake import handshake


@pytest.mark.parametrize("name", CONFUSABLE)
@pytest_twisted.ensureDeferred
async def test_refused_at_join_chat_and_handshake(server, name):
    """
    join_room is refused invalid_message with the rule, so a chat message
    to that room is refused too and reaches nobody; a handshake asking for
    it is refused 400.
    """
    alice, bob = await server.connect_many("alice", "bob")
    error = await alice.request({"type": "join_room", "room": name}, "error")
    assert error["payload"]["code"] == "invalid_message"
    assert "NFC" in error["payload"]["error"]
    error = await alice.request({"type": "chat_message", "room": name,
                                 "payload": {"content": "hi"}}, "error")
    assert error["payload"]["code"] == "not_in_room"
    await bob.quiet()
    assert await handshake(server, f"userId=carol&room={quote(name)}") == 400
    assert server.hub.room_names() == ["home-alice", "home-bob"]
