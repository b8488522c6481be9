"""
Matchmaking rules (issue #24, section 4): the windows of skips past
--skips-per-minute and of no instant rematch. Over real sockets, on both
stores: tests/integration/test_pairing_rules_across_daemons.py.
"""


from aleatoria.memory.pairing_rules import Rematches, Skips


def test_the_window_slides():
    """A request leaves the count 60 s after it was made; users who stopped asking are forgotten."""
    now = [0.0]
    skips = Skips(lambda: now[0])
    assert skips.take("alice", 2) is None
    now[0] = 30
    assert skips.take("alice", 2) is None
    assert skips.take("alice", 2) == 30
    now[0] = 60
    assert skips.take("alice", 2) is None
    assert skips.take("alice", 2) == 30
    assert skips.take("bob", 0) is None
    now[0] = 200
    assert skips.take("bob", 1) is None
    assert list(skips._asked) == ["bob"]


def test_rematches_are_forgotten():
    """A pair may meet again once the time is up; pairs whose time is up are forgotten."""
    now = [0.0]
    rematches = Rematches(lambda: now[0])
    rematches.paired("alice", "bob", 10)
    assert not rematches.barred("alice", "bob")
    rematches.ended("bob", "alice")
    assert rematches.barred("bob", "alice") and not rematches.barred("alice", "carol")
    rematches.paired("alice", "carol", 0)
    rematches.ended("alice", "carol")
    assert not rematches.barred("alice", "carol")
    now[0] = 10
    assert not rematches.barred("alice", "bob")
    assert rematches._until == {}
