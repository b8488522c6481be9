"""Waiting for a condition that an event will make true."""

from twisted.internet import reactor
from twisted.internet.task import deferLater

WAIT = 10.0


async def until(condition):
    """Wait for C{condition()} to hold, checking every 50 ms, at most WAIT seconds."""
    for _ in range(int(WAIT / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition never held")
