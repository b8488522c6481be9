"""Pairing real clients, and what the pairing race tests check, read from what clients received."""


def partners(clients):
    """
    Each user's one partner and role, from the assign_role messages in the
    clients' inboxes -- asserting nobody was told of two different partners
    and that every pair agrees on who is whom, with opposite roles.
    """
    found = {}
    for client in clients:
        roles = {(m["payload"]["peerId"], m["payload"]["role"])
                 for m in client.inbox if m["type"] == "assign_role"}
        assert len(roles) <= 1, (client.user, roles)
        if roles:
            found[client.user] = roles.pop()
    for user, (peer, role) in found.items():
        assert found[peer][0] == user, (user, peer)
        assert {role, found[peer][1]} == {"polite", "impolite"}
    return found


async def available(*clients):
    """
    Put clients in the pool, and make sure the server has done it: nothing
    answers user_available_webrtc, but a read of the store sent after it
    is answered after it (on Redis, on the same link, in order).
    """
    for client in clients:
        client.send({"type": "user_available_webrtc"})
        await client.request({"type": "get_blocked"}, "blocked_users")
        await client.quiet()


async def pair(requester, peer):
    requester.send({"type": "request_random_peer"})
    return (await requester.expect("assign_role"))["payload"], (
        await peer.expect("assign_role")
    )["payload"]


async def answered(client):
    """Read C{client}'s messages into its inbox until its request is answered."""
    while not any(m["type"] in ("assign_role", "no_peer_available") for m in client.inbox):
        client.inbox.append(await client.next())


def pairs_settled(clients):
    """Every assign_role sent has arrived: each pairing shows on both sides."""
    peers = {}
    for client in clients:
        for m in client.inbox:
            if m["type"] == "assign_role":
                peers[client.user] = m["payload"]["peerId"]
    return all(peers.get(peer) == user for user, peer in peers.items())
