"""What the pairing race tests check, read from what clients received."""


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
