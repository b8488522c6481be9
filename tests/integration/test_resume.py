"""
Nothing missed (issue: nothing missed, items 1-3): every room message and
direct message carries its stream's offset and epoch; a client that comes
back resumes from where it was, exactly -- on either store, on another
daemon, while others keep talking -- or is told it must reload; and an
inbox lists who wrote, with unread counts every daemon agrees on.
"""

import pytest_twisted

from ..support.lifecycle_helpers import until
from ..support.servers import redis_daemon, start_server, stop_server


def say(client, room, text):
    client.send({"type": "chat_message", "room": room, "payload": {"content": text}})


def write(client, to_user, text):
    client.send({"type": "chat_message", "toUser": to_user, "payload": {"content": text}})


async def chat_until(client, kind):
    """The chat messages C{client} gets before the first message of C{kind}; and that one."""
    chats = []
    while True:
        message = await client.next()
        if message["type"] == kind:
            return chats, message
        if message["type"] == "chat_message":
            chats.append(message)


async def joined(client, room):
    await client.request({"type": "join_room", "room": room}, "room_joined",
                         skip=("user_joined", "user_left"))


@pytest_twisted.ensureDeferred
async def test_offsets_count_one_by_one_per_stream(two_servers):
    """
    Room messages are numbered 1, 2, 3 in one epoch, the same for every
    member; a direct message has an offset in each party's inbox: the echo
    the sender's, the delivery the recipient's.
    """
    one, two = await two_servers()
    alice = await one.connect("alice")
    bob = await two.connect("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    for n in range(3):
        say(alice, "r", f"m{n}")
    mine = [await alice.expect("chat_message", skip=("user_joined",)) for _ in range(3)]
    theirs = [await bob.expect("chat_message", skip=("user_joined",)) for _ in range(3)]
    assert [m["offset"] for m in mine] == [m["offset"] for m in theirs] == [1, 2, 3]
    assert len({m["epoch"] for m in mine + theirs}) == 1
    assert [m["incoming"] for m in mine + theirs] == [False] * 3 + [True] * 3

    write(bob, "alice", "first")
    first = await alice.expect("chat_message", skip=("user_joined",))
    write(alice, "carol", "to nobody online")
    write(alice, "bob", "second")
    echoes = [first] + [await alice.expect("chat_message", skip=("user_joined",))
                        for _ in range(2)]
    assert [(m["payload"]["content"], m["offset"]) for m in echoes] == [
        ("first", 1), ("to nobody online", 2), ("second", 3)]
    assert [(m["offset"], m["incoming"]) for m in [await bob.expect("chat_message"),
                                                   await bob.expect("chat_message")]] == [
        (1, False), (2, True)]
    history = await alice.request({"type": "get_direct_messages",
                                   "payload": {"withUser": "bob"}}, "direct_messages")
    assert [m["offset"] for m in history["payload"]["messages"]] == [1, 3]
    assert all("positions" not in m for m in history["payload"]["messages"])


@pytest_twisted.ensureDeferred
async def test_a_resume_replays_exactly_what_was_missed(two_servers):
    """
    Bob is cut off while alice writes N messages to the room and to him;
    he comes back -- on the other daemon -- and resumes while alice goes
    on writing. He gets every message after his offsets once, in order,
    then resumed: recovered, with the offsets he now stands at.
    """
    one, two = await two_servers()
    alice = await one.connect("alice")
    bob = await one.connect("bob")
    await joined(alice, "r")
    await joined(bob, "r")
    say(alice, "r", "before")
    write(alice, "bob", "before")
    seen = [await bob.expect("chat_message", skip=("user_joined",)) for _ in range(2)]
    room_at, inbox_at = seen[0], seen[1]
    await bob.close()
    await until(lambda: "bob" not in one.hub.rooms.membership.members("r"))

    missed = 7
    for n in range(missed):
        say(alice, "r", f"missed {n}")
        write(alice, "bob", f"missed {n}")
    for _ in range(2 * missed):
        await alice.expect("chat_message", skip=("user_joined", "user_left"))

    bob = await two.connect("bob")
    bob.send({"type": "resume", "messageId": "again", "payload": {
        "rooms": {"r": {"offset": room_at["offset"], "epoch": room_at["epoch"]}},
        "direct": {"offset": inbox_at["offset"], "epoch": inbox_at["epoch"]}}})
    live = 5
    for n in range(live):
        say(alice, "r", f"live {n}")
        write(alice, "bob", f"live {n}")
    chats, resumed = await chat_until(bob, "resumed")
    while len(chats) < 2 * (missed + live):
        chats.append(await bob.expect("chat_message", skip=("user_joined", "user_left")))

    in_room = [m for m in chats if m.get("room") == "r"]
    # direct messages alice sent before bob's resume reached the server went
    # to him live, ahead of the replay: a client orders a stream by offset
    to_me = sorted((m for m in chats if m.get("toUser") == "bob" and "room" not in m),
                   key=lambda m: m["offset"])
    expected = [f"missed {n}" for n in range(missed)] + [f"live {n}" for n in range(live)]
    for stream, start in ((in_room, room_at), (to_me, inbox_at)):
        assert [m["payload"]["content"] for m in stream] == expected
        assert [m["offset"] for m in stream] == list(
            range(start["offset"] + 1, start["offset"] + 1 + missed + live))
        assert {m["epoch"] for m in stream} == {start["epoch"]}
        assert all(m["incoming"] is True for m in stream)
    assert resumed["messageId"] == "again"
    payload = resumed["payload"]
    assert payload["rooms"]["r"]["recovered"] is True
    assert payload["direct"]["recovered"] is True
    assert payload["rooms"]["r"]["offset"] <= in_room[-1]["offset"]
    assert payload["rooms"]["r"]["offset"] >= room_at["offset"] + missed
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_a_room_joined_at_connect_is_not_replayed_twice(two_servers):
    """
    A client connects into the room it resumes: what it had live since
    then is not sent again by the replay.
    """
    one, two = await two_servers()
    alice = await one.connect("alice", room="r")
    say(alice, "r", "old")
    old = await alice.expect("chat_message")
    say(alice, "r", "missed")
    await alice.expect("chat_message")
    bob = await two.connect("bob", room="r")
    await alice.expect("user_joined")
    say(alice, "r", "live before the resume")
    live = await bob.expect("chat_message")
    assert live["payload"]["content"] == "live before the resume"
    bob.send({"type": "resume", "payload": {
        "rooms": {"r": {"offset": old["offset"], "epoch": old["epoch"]}}}})
    chats, resumed = await chat_until(bob, "resumed")
    assert [m["payload"]["content"] for m in chats] == ["missed"]
    assert resumed["payload"]["rooms"]["r"]["recovered"] is True
    await bob.quiet()


@pytest_twisted.ensureDeferred
async def test_a_gap_beyond_history_is_not_recovered(two_servers):
    one, _ = await two_servers(**{"history-size": "3"})
    alice = await one.connect("alice", room="r")
    say(alice, "r", "seen")
    seen = await alice.expect("chat_message")
    for n in range(5):
        say(alice, "r", f"m{n}")
    for _ in range(5):
        last = await alice.expect("chat_message")
    bob = await one.connect("bob")
    bob.send({"type": "resume", "payload": {
        "rooms": {"r": {"offset": seen["offset"], "epoch": seen["epoch"]}}}})
    chats, resumed = await chat_until(bob, "resumed")
    assert chats == []
    assert resumed["payload"]["rooms"]["r"] == {
        "recovered": False, "offset": last["offset"], "epoch": last["epoch"]}
    assert resumed["payload"] == {"rooms": resumed["payload"]["rooms"]}
    history = await bob.request({"type": "get_recent_messages", "room": "r"},
                                "recent_messages")
    assert [m["payload"]["content"] for m in history["payload"]["messages"]] == [
        "m4", "m3", "m2"]


@pytest_twisted.ensureDeferred
async def test_another_epoch_is_not_recovered(two_servers):
    """An offset of another epoch (a stream lost and begun again) is not recovered."""
    one, _ = await two_servers()
    alice = await one.connect("alice", room="r")
    say(alice, "r", "hello")
    hello = await alice.expect("chat_message")
    alice.send({"type": "resume", "payload": {
        "rooms": {"r": {"offset": hello["offset"], "epoch": "another"}}}})
    chats, resumed = await chat_until(alice, "resumed")
    assert chats == []
    assert resumed["payload"]["rooms"]["r"] == {
        "recovered": False, "offset": hello["offset"], "epoch": hello["epoch"]}
    # what alice had live (since she connected into the room) is not
    # replayed; bob, who never was there, gets it all from offset 0
    alice.send({"type": "resume", "payload": {"rooms": {"r": {"offset": 0}}}})
    chats, resumed = await chat_until(alice, "resumed")
    assert chats == [] and resumed["payload"]["rooms"]["r"]["recovered"] is True
    bob = await one.connect("bob")
    bob.send({"type": "resume", "payload": {"rooms": {"r": {"offset": 0}}}})
    chats, resumed = await chat_until(bob, "resumed")
    assert [m["payload"]["content"] for m in chats] == ["hello"]
    assert resumed["payload"]["rooms"]["r"] == {
        "recovered": True, "offset": hello["offset"], "epoch": hello["epoch"]}


@pytest_twisted.ensureDeferred
async def test_a_flushed_redis_begins_new_epochs(own_redis):
    server = await redis_daemon(own_redis.port)
    try:
        alice = await server.connect("alice", room="r")
        say(alice, "r", "before")
        before = await alice.expect("chat_message")
        own_redis.raw("FLUSHALL")
        say(alice, "r", "after")
        after = await alice.expect("chat_message")
        assert after["offset"] == 1 and after["epoch"] != before["epoch"]
        bob = await server.connect("bob")
        bob.send({"type": "resume", "payload": {
            "rooms": {"r": {"offset": before["offset"], "epoch": before["epoch"]}}}})
        chats, resumed = await chat_until(bob, "resumed")
        assert chats == []
        assert resumed["payload"]["rooms"]["r"] == {
            "recovered": False, "offset": 1, "epoch": after["epoch"]}
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_a_room_the_client_may_not_join_is_refused_in_the_answer():
    server = await start_server(**{"max-rooms": "1"})
    try:
        alice = await server.connect("alice")
        alice.send({"type": "resume", "payload": {"rooms": {"r": {"offset": 0}}}})
        _, resumed = await chat_until(alice, "resumed")
        assert resumed["payload"]["rooms"]["r"] == {
            "recovered": False, "code": "forbidden",
            "error": "You are in 1 rooms; leave one first."}
    finally:
        await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_the_inbox_lists_conversations_with_unread_counts_on_every_daemon(two_servers):
    one, two = await two_servers()
    alice = await one.connect("alice")
    bob = await one.connect("bob")
    carol = await two.connect("carol")
    received = []
    for writer, to_user, text in ((bob, "alice", "hi from bob"),
                                  (carol, "alice", "hi from carol"),
                                  (carol, "alice", "again from carol"),
                                  (alice, "dave", "to dave, offline")):
        write(writer, to_user, text)
        received.append(await alice.expect("chat_message"))
    assert [m["offset"] for m in received] == [1, 2, 3, 4]

    inbox = await alice.request({"type": "get_conversations"}, "conversations")
    conversations = inbox["payload"]["conversations"]
    assert [(c["withUser"], c["unread"], c["last"]["payload"]["content"], c["last"]["offset"])
            for c in conversations] == [("dave", 0, "to dave, offline", 4),
                                        ("carol", 2, "again from carol", 3),
                                        ("bob", 1, "hi from bob", 1)]
    assert conversations[1]["last"]["incoming"] is True
    assert "next" not in inbox["payload"]

    answer = await alice.request({"type": "mark_read",
                                  "payload": {"withUser": "carol", "offset": 2}},
                                 "marked_read")
    assert answer["payload"] == {"withUser": "carol", "offset": 2, "unread": 1}
    await alice.close()
    alice = await two.connect("alice")
    page = await alice.request({"type": "get_conversations", "payload": {"limit": 2}},
                               "conversations")
    assert [(c["withUser"], c["unread"]) for c in page["payload"]["conversations"]] == [
        ("dave", 0), ("carol", 1)]
    assert page["payload"]["next"] == 3
    rest = await alice.request({"type": "get_conversations",
                                "payload": {"limit": 2, "before": 3}}, "conversations")
    assert [(c["withUser"], c["unread"]) for c in rest["payload"]["conversations"]] == [
        ("bob", 1)]
    await alice.request({"type": "mark_read", "payload": {"withUser": "bob", "offset": 4}},
                        "marked_read")
    inbox = await alice.request({"type": "get_conversations"}, "conversations")
    assert [c["unread"] for c in inbox["payload"]["conversations"]] == [0, 1, 0]
    error = await alice.request({"type": "get_conversations", "payload": {"limit": 0}},
                                "error")
    assert error["payload"]["code"] == "invalid_message"


@pytest_twisted.ensureDeferred
async def test_a_resume_while_redis_hangs_is_not_recovered(own_redis):
    """
    With Redis hanging, the history cannot be read: the resume is answered
    in time, not recovered, the client's own position given back.
    """
    server = await redis_daemon(own_redis.port, **{"redis-timeout": "1"})
    try:
        alice = await server.connect("alice")
        own_redis.pause()
        try:
            alice.send({"type": "resume", "payload": {
                "rooms": {"r": {"offset": 4, "epoch": "e1"}},
                "direct": {"offset": 2, "epoch": "e2"}}})
            chats, resumed = await chat_until(alice, "resumed")
        finally:
            own_redis.resume()
        assert chats == []
        assert resumed["payload"] == {
            "rooms": {"r": {"recovered": False, "offset": 4, "epoch": "e1"}},
            "direct": {"recovered": False, "offset": 2, "epoch": "e2"}}
    finally:
        await stop_server(server)
