"""
The hub's machine (tests/unit/test_hub_machine.py) on a real redis-server:
a few examples, each step waiting until Redis has answered everything and
every post has come back over pub/sub. Hypothesis drives the machine from
a thread of its own; the hub is only ever touched in the reactor's.
"""

import uuid

import pytest_twisted
from hypothesis import settings
from hypothesis.stateful import (
    run_state_machine_as_test,
)
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import blockingCallFromThread, deferToThread

from aleatoria.domain.events import Kicked
from aleatoria.redis import codec

from ..support.hub import make_hub
from ..support.strategies import EXAMPLES
from ..unit.test_hub_machine import BARRIER, HISTORY, MACHINE_SETTINGS, HubMachine


class Redis:
    """
    A real redis-server, a fresh key prefix for each example; every step
    runs in the reactor's thread and is done when the hub is quiet again.
    """

    def __init__(self, port):
        from twisted.internet import reactor

        self.port = port
        self.reactor = reactor
        self.barrier = None

    def start(self, metrics):
        return blockingCallFromThread(self.reactor, lambda: ensureDeferred(self._start(metrics)))

    async def _start(self, metrics):
        from aleatoria.daemon.backends import make_backend
        from aleatoria.ops.reporting import Reporter

        from ..support.servers import redis_config, started

        config = redis_config(self.port, **{"redis-prefix": f"machine-{uuid.uuid4().hex}:",
                                            "history-size": str(HISTORY)})
        backend = make_backend(config, self.reactor, Reporter(clock=self.reactor).daemon)
        hub = make_hub(self.reactor, backend, metrics=metrics)
        self.barrier = RedisBarrier(backend, hub)
        await started(backend, self.barrier)
        return backend, hub

    def step(self, act, *args):
        def acted():
            act(*args)
            return ensureDeferred(self.barrier.quiet())
        blockingCallFromThread(self.reactor, acted)

    def ask(self, seam, *args):
        return blockingCallFromThread(self.reactor, seam, *args)

    def stop(self, backend):
        blockingCallFromThread(self.reactor, backend.stopService)

    def pass_time(self):
        """Redis's clock is the machine's: held calls stay held (the grace is long)."""
        return False


class RedisBarrier:
    """
    Stands between the bus and the hub, to tell when a step is done: a
    marker post published after every command of the step comes back after
    every post those commands published (one connection publishes, one
    hears, each in order). When two rounds in a row end with no command
    waiting, nothing more is under way.
    """

    def __init__(self, backend, hub):
        self._backend = backend
        self._hub = hub
        self._waiting = {}

    def __getattr__(self, name):
        return getattr(self._hub, name)

    def kicked(self, user, reason):
        if user == BARRIER:
            self._waiting.pop(reason).callback(None)
        else:
            self._hub.kicked(user, reason)

    async def quiet(self):
        calm = 0
        for _ in range(50):
            await self._round()
            calm = calm + 1 if self._backend.commands.pending == 0 else 0
            if calm == 2:
                return
        raise AssertionError("the hub never went quiet")

    def _round(self):
        token = uuid.uuid4().hex
        heard = self._waiting[token] = Deferred()
        post = codec.post("kick", "barrier", BARRIER, Kicked(BARRIER, token))
        channel = self._backend.keys("node_channel", self._backend.node)
        self._backend.commands.call("publish", channel, post, capped=False)
        return heard


@pytest_twisted.ensureDeferred
async def test_the_hub_keeps_its_promises_on_redis(redis_server):
    class OnRedis(HubMachine):
        store = Redis(redis_server.port)

    await deferToThread(run_state_machine_as_test, OnRedis, settings=settings(
        max_examples=max(5, EXAMPLES // 10), stateful_step_count=25, **MACHINE_SETTINGS))
