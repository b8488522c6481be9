"""
One room name never reads as another: names with invisible or confusable
characters are refused at the handshake, at join and so at chat (issue:
attacks, item 11), while names in any script pass. The rule here; a
running daemon applying it: tests/integration/test_room_names_refused.py.
"""


import pytest

from aleatoria.domain.rules import valid_room

CONFUSABLE = [
    pytest.param("lob\u200bby", id="zero-width-space-Cf"),
    pytest.param("lob\u00adby", id="soft-hyphen-Cf"),
    pytest.param("\ufeffLobby", id="byte-order-mark-Cf"),
    pytest.param("Lobby\u2060", id="word-joiner-Cf"),
    pytest.param("lob\u2028by", id="line-separator-Zl"),
    pytest.param("lob\u2029by", id="paragraph-separator-Zp"),
    pytest.param("lob\ue000by", id="private-use-Co"),
    pytest.param("lob\u0378by", id="unassigned-Cn"),
    pytest.param("\u0301Lobby", id="starts-with-combining-mark"),
    pytest.param("Cafe\u0301", id="not-NFC"),
    pytest.param("\u212bngstrom", id="not-NFC-singleton"),
    pytest.param("gro\u202eup", id="bidi-override-Cf"),
    pytest.param("a\x85b", id="next-line-Cc"),
]

READABLE = ["Lobby", "Café", "naïve", "日本語のルーム", "a\u3000b", "Ελληνικά",
            "Cafe\u0301"[:-1] + "é", "party \U0001f389", "x\u0301y", "x" * 100]
"""Names in any script pass; so does a combining mark after a base character."""


@pytest.mark.parametrize("name", CONFUSABLE)
def test_the_rule_refuses_each_class(name):
    assert not valid_room(name)


@pytest.mark.parametrize("name", READABLE)
def test_the_rule_passes_readable_names(name):
    assert valid_room(name)


def test_the_servers_own_name_is_refused_as_such():
    """'system' fits the rule of user ids, and is refused for being the server's."""
    from aleatoria.domain.refusals import Invalid
    from aleatoria.domain.rules import check_user

    with pytest.raises(Invalid, match="is the server's own"):
        check_user("System", "userId")
