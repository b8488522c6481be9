"""
Calls outlive their daemons (issue #25, section 2): twenty calls across
three daemons on one Redis, real processes signalled for real. A rolling
restart (SIGTERM one daemon, start it again, then the next) ends no
call, and neither does kill -9 of a daemon whose users reconnect
elsewhere within the grace. Every message each client gets is checked.
"""

import signal

import pytest_twisted

from ..support.calls import resumed
from ..support.daemons import Spawned
from ..support.wsclient import connect

CALLS = 20
GRACE = "15"
"""Seconds a lost user's call waits: far more than a reconnect takes, never waited out."""


class Fleet:
    """Three daemons, and which one serves each user."""

    def __init__(self, redis, cwd):
        self.redis, self._cwd = redis, cwd
        self.daemons = [self.spawn() for _ in range(3)]
        self.clients = {}
        self.serving = {}

    def spawn(self):
        return Spawned(self.redis.port, self._cwd, "--node-ttl", "1", "--call-grace", GRACE)

    async def connect(self, user, at):
        client = await connect(self.daemons[at].port, user, f"home-{user}", origin=None)
        await self.redis.becomes(self.daemons[at].node, "GET", f"presence:{user}")
        self.clients[user], self.serving[user] = client, at
        return client

    def served_by(self, at):
        return sorted(user for user, where in self.serving.items() if where == at)

    def stop(self):
        for daemon in self.daemons:
            daemon.kill()


async def twenty_calls(fleet):
    """
    Twenty calls, each between users on two different daemons: C{pairs}
    maps each user to its partner and role.
    """
    pairs = {}
    for k in range(CALLS):
        caller = await fleet.connect(f"a{k}", k % 3)
        callee = await fleet.connect(f"b{k}", (k + 1) % 3)
        callee.send({"type": "user_available_webrtc"})
        await fleet.redis.becomes("1", "SISMEMBER", "available:webrtc", callee.user)
        caller.send({"type": "request_random_peer"})
        assert (await caller.expect("assign_role"))["payload"]["peerId"] == callee.user
        assert (await callee.expect("assign_role"))["payload"]["peerId"] == caller.user
        pairs[caller.user] = (callee.user, "impolite")
        pairs[callee.user] = (caller.user, "polite")
    return pairs


async def come_back(fleet, users, at, pairs):
    """
    C{users}, whose connections were lost, connect to daemon C{at} in
    turn: each gets its call again (resumed), and its partner
    peer_reconnected -- if that partner is back already (a partner lost
    too, and not back yet, is told nothing: it gets its call again).
    """
    for user in users:
        client = await fleet.connect(user, at)
        peer, role = pairs[user]
        back = await client.expect("assign_role")
        assert resumed(back) == (role, peer, True)
    for turn, user in enumerate(users):
        peer = pairs[user][0]
        if peer not in users or users.index(peer) < turn:
            told = await fleet.clients[peer].expect("peer_reconnected")
            assert told["payload"] == {"peerId": user}


async def still_in_calls(fleet, pairs):
    """Every call goes on: an offer passes each way, and nobody heard anything else."""
    for user, (peer, _) in sorted(pairs.items()):
        fleet.clients[user].send({"type": "webrtc_offer", "toUser": peer,
                                  "payload": {"sdp": user}})
    for user, (peer, _) in sorted(pairs.items()):
        got = await fleet.clients[peer].expect("webrtc_offer")
        assert got["fromUser"] == user and got["payload"] == {"sdp": user}
    for client in fleet.clients.values():
        await client.quiet()


@pytest_twisted.ensureDeferred
async def test_a_rolling_restart_ends_no_call(own_redis, tmp_path):
    """
    Each daemon in turn gets SIGTERM: its clients are closed with 1001
    and reconnect to the next daemon, are told their calls again, their
    partners that they are back; the daemon is started again, and the
    next one stopped. No hangup anywhere, and every call still relays.
    """
    fleet = Fleet(own_redis, tmp_path)
    try:
        pairs = await twenty_calls(fleet)
        for at in range(3):
            leaving = fleet.served_by(at)
            fleet.daemons[at].process.send_signal(signal.SIGTERM)
            for user in leaving:
                assert (await fleet.clients[user].closed())[0] == 1001
            await fleet.daemons[at].exited()
            log = "".join(fleet.daemons[at].log)
            for user in leaving:
                assert f"{user} lost its connection; its call with {pairs[user][0]} waits" in log
            assert "Call of" not in log
            await come_back(fleet, leaving, (at + 1) % 3, pairs)
            await fleet.daemons[(at + 1) % 3].heard(
                f"{leaving[-1]} came back to its call with {pairs[leaving[-1]][0]}")
            fleet.daemons[at] = fleet.spawn()
            await still_in_calls(fleet, pairs)
        assert own_redis.raw("ZCARD", "matches:held") == "0"
    finally:
        fleet.stop()


async def calls_resumed(port):
    """What a daemon's /metrics counts of calls resumed there."""
    import re

    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    response = await Agent(reactor).request(
        b"GET", f"http://127.0.0.1:{port}/metrics".encode())
    text = (await readBody(response)).decode()
    found = re.search(r'aleatoria_calls_held_total\{outcome="resumed"\} (\S+)', text)
    return int(float(found[1])) if found else 0


@pytest_twisted.ensureDeferred
async def test_calls_outlive_a_daemon_killed(own_redis, tmp_path):
    """
    kill -9 of a daemon under twenty calls: its users, back on the other
    daemons within the grace, keep every call; nobody hears a hangup.
    """
    fleet = Fleet(own_redis, tmp_path)
    try:
        pairs = await twenty_calls(fleet)
        victims = fleet.served_by(0)
        fleet.daemons[0].kill()
        for user in victims:
            await fleet.clients[user].closed()
        half = len(victims) // 2
        await come_back(fleet, victims[:half], 1, pairs)
        await come_back(fleet, victims[half:], 2, pairs)
        await still_in_calls(fleet, pairs)
        assert own_redis.raw("ZCARD", "matches:held") == "0"
        resumed = [await calls_resumed(fleet.daemons[at].port) for at in (1, 2)]
        assert resumed == [half, len(victims) - half]
    finally:
        fleet.stop()
