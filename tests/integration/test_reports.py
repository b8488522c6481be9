"""
Report (issue #24, section 2) over real sockets and the real server API,
on both stores and -- on Redis -- with the two users on two daemons: the
report blocks and ends the call, keeps exactly the evidence the server
has (the last 50 messages of the match, both ways), is rate-limited,
read newest first and paged, and deleted.
"""

import functools

import pytest
import pytest_twisted

from ..support.api import ENV, call
from ..support.pairing import available

API = {"api-port": "tcp:0:interface=127.0.0.1"}


@pytest.fixture
def two_servers(two_servers):
    """The shared two servers with the API token set, and the API on the first."""
    return functools.partial(two_servers, ENV, first=API)


def report(client, user, reason="harassment", details="", message_id="r1"):
    client.send({"type": "report_user", "messageId": message_id,
                 "payload": {"userId": user, "reason": reason, "details": details}})


async def reported(client, user, **kwargs):
    report(client, user, **kwargs)
    answer = await client.expect("user_reported")
    assert answer["payload"]["userId"] == user
    return answer["payload"]["reportId"]


async def write(sender, recipient, text):
    """A direct message, once both have it; as the sender's echo shows it."""
    sender.send({"type": "chat_message", "toUser": recipient.user,
                 "payload": {"content": text}})
    echo = await sender.expect("chat_message")
    await recipient.expect("chat_message")
    return {"fromUser": sender.user, "toUser": recipient.user, "content": text,
            "messageId": echo["messageId"], "createTime": echo["createTime"]}


@pytest_twisted.ensureDeferred
async def test_a_report_keeps_the_evidence(two_servers):
    """
    Reporting one's partner blocks it and ends the call (it hears only
    "ended"); the report holds both parties and their addresses, when the
    match began and how long it lasted, no shared interests, and exactly
    the last 50 direct messages the two wrote since the match began, both
    ways, oldest first -- not those from before it.
    """
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    await write(alice, bob, "before the match")
    await available(bob)
    alice.send({"type": "request_random_peer"})
    await alice.expect("assign_role")
    await bob.expect("assign_role")
    sent = []
    for n in range(60):
        sender, recipient = (alice, bob) if n % 2 == 0 else (bob, alice)
        sent.append(await write(sender, recipient, f"message {n}"))
    report_id = await reported(alice, "bob", details="He was rude.")
    hangup = await bob.expect("hangup")
    assert hangup["fromUser"] == "alice" and hangup["payload"] == {"reason": "ended"}
    status, _, kept = await call(one, "GET", f"/api/v1/reports/{report_id}")
    assert status == 200, kept
    assert kept["messages"] == sent[-50:]
    assert kept["reporter"] == {"userId": "alice", "address": "127.0.0.1"}
    assert kept["reported"] == {"userId": "bob", "address": "127.0.0.1"}
    assert (kept["reportId"], kept["reason"], kept["details"]) == (
        report_id, "harassment", "He was rude.")
    assert kept["sharedInterests"] == []
    assert kept["pairedAt"] <= sent[0]["createTime"] <= sent[-1]["createTime"] \
        <= kept["createdAt"]
    assert 0 < kept["pairedSeconds"] < 60
    blocked = await alice.request({"type": "get_blocked"}, "blocked_users")
    assert blocked["payload"] == {"users": ["bob"]}
    error = await bob.request({"type": "chat_message", "toUser": "alice",
                               "payload": {"content": "hey"}}, "error")
    assert error["payload"]["code"] == "forbidden"


@pytest_twisted.ensureDeferred
async def test_a_report_without_a_match(two_servers):
    """Two users never matched: no pairing in the report, and their last messages."""
    one, two = await two_servers()
    alice, zed = await one.connect("alice"), await two.connect("zed")
    sent = [await write(zed, alice, "hello"), await write(alice, zed, "go away")]
    report_id = await reported(alice, "zed", reason="spam")
    status, _, kept = await call(one, "GET", f"/api/v1/reports/{report_id}")
    assert status == 200
    assert (kept["pairedAt"], kept["pairedSeconds"]) == (None, None)
    assert kept["messages"] == sent
    await zed.quiet()


@pytest_twisted.ensureDeferred
async def test_reports_are_paged_newest_first_and_deleted(two_servers):
    """GET lists the newest first, a page at a time; DELETE makes one gone (404 after)."""
    one, _ = await two_servers()
    alice = await one.connect("alice")
    ids = [await reported(alice, user) for user in ("b", "c", "d")]
    status, _, page = await call(one, "GET", "/api/v1/reports?limit=2")
    assert status == 200
    assert [r["reportId"] for r in page["reports"]] == [ids[2], ids[1]]
    status, _, whole = await call(one, "GET", "/api/v1/reports?limit=3")
    assert len(whole["reports"]) == 3 and "next" not in whole  # nothing follows: no next
    status, _, bad = await call(one, "GET", "/api/v1/reports?after=garbage")
    assert status == 400 and bad["code"] == "invalid_message"
    status, _, rest = await call(one, "GET", f"/api/v1/reports?limit=2&after={page['next']}")
    assert [r["reportId"] for r in rest["reports"]] == [ids[0]] and "next" not in rest
    status, _, answer = await call(one, "DELETE", f"/api/v1/reports/{ids[1]}")
    assert (status, answer) == (200, {"reportId": ids[1], "deleted": True})
    for method in ("GET", "DELETE"):
        status, _, problem = await call(one, method, f"/api/v1/reports/{ids[1]}")
        assert (status, problem["code"]) == (404, "not_found")
    status, _, page = await call(one, "GET", "/api/v1/reports")
    assert [r["reportId"] for r in page["reports"]] == [ids[2], ids[0]]
    for bad in ("/api/v1/reports?limit=0", "/api/v1/reports?limit=101"):
        status, _, problem = await call(one, "GET", bad)
        assert (status, problem["code"]) == (400, "invalid_message")
    status, _, problem = await call(one, "GET", "/api/v1/reports/not-an-id")
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_past_reports_per_hour(two_servers):
    """A report past --reports-per-hour is rate_limited, with retryAfter; nothing kept."""
    one, _ = await two_servers(**{"reports-per-hour": "2"})
    alice = await one.connect("alice")
    await reported(alice, "b")
    await reported(alice, "c")
    report(alice, "d", message_id="r3")
    error = (await alice.expect("error"))["payload"]
    assert error["code"] == "rate_limited" and error["messageId"] == "r3"
    assert 0 < error["retryAfter"] <= 3600 * 1000
    blocked = await alice.request({"type": "get_blocked"}, "blocked_users")
    assert blocked["payload"] == {"users": ["b", "c"]}
    _, _, page = await call(one, "GET", "/api/v1/reports")
    assert len(page["reports"]) == 2


@pytest_twisted.ensureDeferred
async def test_bad_reports(two_servers):
    """A bad reason, too many details, oneself, no user: invalid_message, nothing filed."""
    one, _ = await two_servers()
    alice = await one.connect("alice")
    for payload in ({"userId": "bob", "reason": "ugly"}, {"userId": "bob"},
                    {"userId": "bob", "reason": "spam", "details": "x" * 501},
                    {"userId": "alice", "reason": "spam"}, {"reason": "spam"}):
        error = await alice.request({"type": "report_user", "payload": payload}, "error")
        assert error["payload"]["code"] == "invalid_message", payload
    await reported(alice, "bob", reason="other", details="é" * 500)
    _, _, page = await call(one, "GET", "/api/v1/reports")
    assert len(page["reports"]) == 1


@pytest_twisted.ensureDeferred
async def test_a_report_keeps_the_interests_the_two_shared(two_servers):
    """The evidence names what paired them: the interests they had in common."""
    one, two = await two_servers()
    alice, bob = await one.connect("alice"), await two.connect("bob")
    bob.send({"type": "user_available_webrtc", "payload": {"interests": ["Chess", "jazz"]}})
    await bob.request({"type": "get_blocked"}, "blocked_users")
    alice.send({"type": "request_random_peer", "payload": {"interests": ["chess", "go"]}})
    assert (await alice.expect("assign_role"))["payload"]["commonInterests"] == ["chess"]
    await bob.expect("assign_role")
    report_id = await reported(alice, "bob")
    await bob.expect("hangup")
    status, _, report = await call(one, "GET", f"/api/v1/reports/{report_id}")
    assert status == 200 and report["sharedInterests"] == ["chess"]
