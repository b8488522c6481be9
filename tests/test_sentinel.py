"""
Redis Sentinel (issue #26): the daemons follow the primary the sentinels
name, through a SIGKILLed primary and a manual failover, and stay honest
about what a failover may have lost.
"""

import pytest

from .sentinel import SentinelSetup


@pytest.fixture
def sentinels(tmp_path):
    """A primary, a replica and three sentinels of this test's own."""
    setup = SentinelSetup(tmp_path).start()
    yield setup
    setup.stop()


def test_the_fixture_fails_over(sentinels):
    """The sentinels name the replica once the primary is SIGKILLed, and it takes writes."""
    first = sentinels.primary.port
    assert sentinels.named() == first
    sentinels.kill_primary()
    old, new = sentinels.await_new_primary()
    assert (old, new) == (first, sentinels.primary.port) and new != first
    assert sentinels.primary.raw("SET", "k", "v") == "OK"
