"""
Segments (issue #24, section 4): a token's segment claim partitions the
matchmaking pool -- users of different segments are never paired, on
either store, and not in a 200-user pairing storm across three daemons on
Redis. No token, or no claim: the segment "default".
"""

import time

import jwt
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from ..support.lifecycle_helpers import until
from ..support.pairing import answered, available, pairs_settled, partners
from ..support.servers import redis_daemon, start_server, stop_server
from .test_auth import SECRET, handshake

ENV = {"ALEATORIA_JWT_SECRET": SECRET}
ASK = {"type": "request_random_peer"}


def token(user, segment=None):
    claims = {"sub": user, "exp": int(time.time()) + 300}
    if segment is not None:
        claims["segment"] = segment
    return jwt.encode(claims, SECRET, "HS256")


async def connect(server, user, segment=None):
    return await server.connect(user, extra=f"&token={token(user, segment)}")


def segment_of(user):
    return ("adult", "teen", None)[int(user[1:]) % 3]


def daemon_of(n):
    return n // 3 % 3


@pytest_twisted.ensureDeferred
async def test_segments_are_never_mixed_on_the_memory_store():
    """An adult and a teen are not paired; two adults are; no claim is "default"."""
    server = await start_server(ENV)
    try:
        adult, teen, other = (await connect(server, "a1", "adult"),
                              await connect(server, "t1", "teen"),
                              await connect(server, "d1"))
        await available(teen, other)
        await adult.request(ASK, "no_peer_available")
        second = await connect(server, "a2", "adult")
        await available(second)
        reply = await adult.request(ASK, "assign_role")
        assert reply["payload"]["peerId"] == "a2"
        plain = await connect(server, "plain")
        assert (await plain.request(ASK, "assign_role"))["payload"]["peerId"] == "d1"
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_bad_segment_claim_is_refused():
    """A segment that is not a string of 1 to 32 characters: the handshake is refused 401."""
    server = await start_server(ENV)
    try:
        for segment in ("", "x" * 33, 7, ["adult"]):
            assert await handshake(server, f"token={token('alice', segment)}") == 401
        await connect(server, "alice", "x" * 32)
        assert "alice" in server.hub.connections
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_segments_never_mixed_in_a_storm_across_three_daemons(own_redis):
    """
    200 users on three daemons, in three segments (adult, teen, none), all
    in the pool; 100 request at once: every pair is of one segment, nobody
    holds two partners, every request is answered, and pairs span daemons.
    """
    servers = [await redis_daemon(own_redis.port, ENV) for _ in range(3)]
    try:
        clients = []
        for n in range(200):
            clients.append(await connect(servers[daemon_of(n)], f"u{n:03d}",
                                         segment_of(f"u{n:03d}")))
        for client in clients:
            client.send({"type": "user_available_webrtc"})
        for client in clients:
            await client.quiet()
        requesters = clients[::2]
        for client in requesters:
            client.send(ASK)
        await gatherResults([Deferred.fromCoroutine(answered(c)) for c in requesters])
        await until(lambda: pairs_settled(clients))
        found = partners(clients)
        assert len(found) >= 60
        for user, (peer, _) in found.items():
            assert segment_of(user) == segment_of(peer), (user, peer)
        assert any(daemon_of(int(u[1:])) != daemon_of(int(p[1:])) for u, (p, _) in found.items())
    finally:
        for server in servers:
            await stop_server(server)
