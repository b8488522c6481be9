"""
Calls between real clients, on either store (the servers to run them on:
the C{two_servers} fixture) and a pairing made and checked from both sides.
"""

from .pairing import available


def registering(server, redis):
    """Make C{server.connect} return once Redis has the user's presence there."""
    connect_only = server.connect

    async def connect_registered(user, room=None, **kwargs):
        client = await connect_only(user, room, **kwargs)
        await redis.becomes(server.backend.node, "GET", f"presence:{user}")
        return client

    server.connect = connect_registered


async def in_a_call(requester, peer):
    """Pair C{requester} with C{peer} (alone in the pool); both checked, nothing else heard."""
    await available(peer)
    requester.send({"type": "request_random_peer", "messageId": "pair"})
    mine = await requester.expect("assign_role")
    theirs = await peer.expect("assign_role")
    assert (mine["payload"]["role"], mine["payload"]["peerId"]) == ("impolite", peer.user)
    assert (theirs["payload"]["role"], theirs["payload"]["peerId"]) == ("polite", requester.user)


async def drop(client, server):
    """
    Lose C{client}'s connection as a network would -- the TCP connection
    aborted, no close frame -- and wait until C{server} has noticed.
    """
    from .lifecycle_helpers import until

    client._protocol.transport.abortConnection()
    await client.closed()
    await until(lambda: client.user not in server.hub.connections)


def offer(to_user, message_id="o1"):
    return {"type": "webrtc_offer", "toUser": to_user, "payload": {"sdp": "v=0"},
            "messageId": message_id}


async def unmatched(server, user):
    """Wait until the store holds C{user} in no match (a hangup has no answer to wait for)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    for _ in range(200):
        if await server.backend.matchmaking.match_of(user) is None:
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"{user} is still matched")


def resumed(assign_role):
    """An assign_role's role, peer and whether it resumes a call (its iceServers aside)."""
    payload = assign_role["payload"]
    return payload["role"], payload["peerId"], payload.get("resumed", False)
