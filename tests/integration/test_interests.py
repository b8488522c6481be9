"""
Interests (issue #24, section 4) over real sockets, on both stores and --
on Redis -- between two daemons: a request is paired with a user who
shares an interest first, else anyone unless interestsOnly (then it waits
in the pool with its interests); both assign_role say commonInterests;
bad interests are refused and change nothing.
"""

import pytest_twisted


def offer(client, *interests):
    client.send({"type": "user_available_webrtc", "payload": {"interests": list(interests)}})
    return client.quiet()


def ask(client, kind, *interests, only=False, **more):
    payload = {"interests": list(interests), **more}
    if only:
        payload["interestsOnly"] = True
    return client.request({"type": "request_random_peer", "messageId": "r",
                           "payload": payload}, kind)


@pytest_twisted.ensureDeferred
async def test_a_shared_interest_is_preferred(two_servers):  # noqa: F811
    """
    With several strangers available, the one sharing an interest (compared
    case-insensitively) is picked, every time; both hear what they share.
    """
    one, two = await two_servers()
    fan = await two.connect("fan")
    others = [await two.connect(f"other{n}") for n in range(6)]
    for other in others:
        await offer(other, "golf")
    await offer(fan, "Jazz", "chess")
    for n in range(3):
        me = await one.connect(f"me{n}")
        reply = await ask(me, "assign_role", "cooking", "JAZZ")
        assert reply["payload"]["peerId"] == "fan"
        assert reply["payload"]["commonInterests"] == ["jazz"]
        theirs = (await fan.expect("assign_role"))["payload"]
        assert theirs["peerId"] == f"me{n}" and theirs["commonInterests"] == ["jazz"]
        me.send({"type": "hangup", "toUser": "fan"})
        await fan.expect("hangup")
        await offer(fan, "jazz")


@pytest_twisted.ensureDeferred
async def test_anyone_else_unless_interests_only(two_servers):  # noqa: F811
    """
    Nobody shares an interest: anyone is picked, commonInterests empty --
    unless interestsOnly: then no_peer_available, and the requester waits
    in the pool with its interests, where a later request finds it.
    """
    one, two = await two_servers()
    golfer, loner, later = (await two.connect("golfer"), await one.connect("loner"),
                            await two.connect("later"))
    await offer(golfer, "golf")
    await ask(loner, "no_peer_available", "chess", only=True)
    reply = await ask(later, "assign_role", "Chess")
    assert reply["payload"]["peerId"] == "loner"
    assert reply["payload"]["commonInterests"] == ["chess"]
    assert (await loner.expect("assign_role"))["payload"]["commonInterests"] == ["chess"]
    other = await one.connect("other")
    reply = await ask(other, "assign_role", "knitting")
    assert reply["payload"] == {**reply["payload"], "peerId": "golfer", "commonInterests": []}


@pytest_twisted.ensureDeferred
async def test_bad_interests_are_refused(two_servers):  # noqa: F811
    """More than 10, empty, longer than 32, not strings: refused; nothing changes."""
    one, _ = await two_servers()
    alice, bob = await one.connect("alice"), await one.connect("bob")
    await offer(bob)
    for interests in ([str(n) for n in range(11)], [""], ["x" * 33]):
        reply = await ask(alice, "error", *interests)
        assert reply["payload"]["code"] == "invalid_message"
        alice.send({"type": "user_available_webrtc", "payload": {"interests": interests}})
        assert (await alice.expect("error"))["payload"]["code"] == "invalid_message"
    reply = await alice.request({"type": "request_random_peer",
                                 "payload": {"interests": [7]}}, "error_response")
    assert "$.payload.interests" in reply["payload"]["details"]
    alice.send({"type": "user_available_webrtc", "payload": None})
    await alice.quiet()
    reply = await ask(alice, "assign_role", "x" * 32)
    assert reply["payload"]["peerId"] == "bob"
