"""
ICE servers on the wire (issue #25): C{ice_servers} as a connection opens
(after C{welcome} when the server names its clients), again on
C{get_ice_servers}, and fresh in every C{assign_role}; on both stores,
and across two daemons on Redis.
"""

import time
from datetime import datetime

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from aleatoria.edge.ice import credential

from ..support.pairing import available
from ..support.servers import ORIGIN, redis_daemon, start_server, stop_server
from ..support.wsclient import connect

SECRET = "turn-secret-" + "0123456789abcdef" * 2
TURN = ["turn:turn.test:3478?transport=udp", "turns:turn.test:443?transport=tcp"]
STUN = "stun:stun.test:3478"
ICE = {"env": {"ALEATORIA_TURN_SECRET": SECRET},
       "turn-url": ",".join(TURN), "stun-url": STUN, "turn-ttl": "600"}


def check_servers(servers):
    """STUN as configured; TURN with a credential coturn would take, good for the ttl."""
    stun, turn = servers
    assert stun == {"urls": [STUN]}
    assert turn["urls"] == TURN
    expiry, opaque = turn["username"].split(":")
    assert 590 <= int(expiry) - time.time() <= 600
    assert opaque and "alice" not in opaque and "bob" not in opaque
    assert turn["credential"] == credential(SECRET, turn["username"])
    return turn["username"]


def check_payload(payload):
    assert payload["ttl"] == 600
    expires = datetime.fromisoformat(payload["expiresAt"].replace("Z", "+00:00"))
    assert expires.timestamp() == int(payload["iceServers"][1]["username"].split(":")[0])
    return check_servers(payload["iceServers"])


@pytest.fixture(params=["memory", "redis"])
def ice_server(request):
    """A daemon with STUN and TURN configured, on each store in turn."""
    running = []

    async def start(**given):
        settings = {**ICE, **given}
        if request.param == "memory":
            server = await start_server(**settings)
        else:
            redis = request.getfixturevalue("redis_server")
            settings["redis-prefix"] = request.getfixturevalue("redis_prefix")
            server = await redis_daemon(redis.port, **settings)
        running.append(server)
        return server

    yield start
    for server in running:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


@pytest_twisted.ensureDeferred
async def test_ice_servers_come_as_a_connection_opens_and_on_request(ice_server):
    """The first message; a get_ice_servers gets a new one, repeating its messageId."""
    server = await ice_server()
    alice = await server.connect("alice")
    first = alice.ice_servers
    assert first["type"] == "ice_servers" and first["toUser"] == "alice"
    opened = check_payload(first["payload"])
    again = await alice.request({"type": "get_ice_servers", "messageId": "m1"}, "ice_servers")
    assert again["messageId"] == "m1"
    assert check_payload(again["payload"]) != opened


@pytest_twisted.ensureDeferred
async def test_every_assign_role_carries_fresh_ice_servers(ice_server):
    """Both sides of a pairing get credentials of their own, also on a second pairing."""
    server = await ice_server()
    alice, bob = await server.connect_many("alice", "bob")
    names = set()
    for _ in range(2):
        await available(bob)
        mine = await alice.request({"type": "request_random_peer"}, "assign_role")
        theirs = await bob.expect("assign_role")
        assert (mine["payload"]["peerId"], theirs["payload"]["peerId"]) == ("bob", "alice")
        names |= {check_servers(mine["payload"]["iceServers"]),
                  check_servers(theirs["payload"]["iceServers"])}
        alice.send({"type": "hangup", "toUser": "bob"})
        await bob.expect("hangup")
        await alice.quiet()
    assert len(names) == 4


@pytest_twisted.ensureDeferred
async def test_without_turn_the_stun_urls_or_nothing(ice_server):
    """No TURN configured: ice_servers still comes, with the STUN URLs or an empty list."""
    stun_only = await ice_server(env={}, **{"turn-url": ""})
    alice = await stun_only.connect("alice")
    assert alice.ice_servers["payload"]["iceServers"] == [{"urls": [STUN]}]
    nothing = await ice_server(env={}, **{"turn-url": "", "stun-url": ""})
    bob = await nothing.connect("bob")
    assert bob.ice_servers["payload"]["iceServers"] == []
    answer = await bob.request({"type": "get_ice_servers"}, "ice_servers")
    assert answer["payload"]["iceServers"] == []


@pytest_twisted.ensureDeferred
async def test_anonymous_clients_hear_welcome_first():
    """With --anonymous, ice_servers follows the welcome."""
    server = await start_server(anonymous=True, **ICE)
    try:
        client = await connect(server.port, None, "r", origin=ORIGIN)
        server.clients.append(client)
        welcome = await client.expect("welcome")
        assert welcome["createTime"] < client.ice_servers["createTime"]
        assert client.ice_servers["toUser"] == welcome["payload"]["userId"]
        check_payload(client.ice_servers["payload"])
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_assign_role_across_two_daemons(own_redis):
    """A pairing across daemons: each side's assign_role is minted by its own daemon."""
    one = await redis_daemon(own_redis.port, **{**ICE, "node-ttl": "1"})
    two = await redis_daemon(own_redis.port, **{**ICE, "node-ttl": "1"})
    try:
        bob = await two.connect("bob")
        await available(bob)
        await own_redis.becomes(two.backend.node, "GET", "presence:bob")
        alice = await one.connect("alice")
        mine = await alice.request({"type": "request_random_peer"}, "assign_role")
        theirs = await bob.expect("assign_role")
        assert (mine["payload"]["peerId"], theirs["payload"]["peerId"]) == ("bob", "alice")
        assert (check_servers(mine["payload"]["iceServers"])
                != check_servers(theirs["payload"]["iceServers"]))
    finally:
        await stop_server(one)
        await stop_server(two)
