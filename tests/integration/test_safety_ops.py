"""
What operators see of blocks and reports: breadcrumbs on the acting
user's Sentry trail, counters on /metrics, and log lines.
"""

import pytest_twisted
from twisted.logger import globalLogPublisher


@pytest_twisted.ensureDeferred
async def test_breadcrumbs_counters_and_lines(receiver, reporting):  # noqa: F811
    """
    Blocking, unblocking and reporting each leave a breadcrumb on the
    user's trail, in order, a line in the log, and move the counters.
    """
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    lines = []

    def heard(event):
        from twisted.logger import formatEvent

        if event.get("log_namespace") == "aleatoria.safety" or (
                event.get("log_namespace") == "aleatoria.calls"
                and "ended:" in formatEvent(event)):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(heard)
    try:
        server = await reporting()
        alice, bob = await server.connect_many("alice", "bob")
        bob.send({"type": "user_available_webrtc"})
        await bob.quiet()
        await alice.request({"type": "request_random_peer"}, "assign_role")
        await bob.expect("assign_role")
        await alice.request({"type": "block_user", "payload": {"userId": "bob"}},
                            "user_blocked")
        await bob.expect("hangup")
        await alice.request({"type": "unblock_user", "payload": {"userId": "bob"}},
                            "user_unblocked")
        report = await alice.request({"type": "report_user", "payload": {
            "userId": "carol", "reason": "spam"}}, "user_reported")
        report_id = report["payload"]["reportId"]
        await alice.request({"type": "whatever"}, "error")
        event = await receiver.event(operation="unknown_message_type")
        response = await Agent(reactor).request(b"GET", server.url("/metrics"))
        metrics = (await readBody(response)).decode()
    finally:
        globalLogPublisher.removeObserver(heard)

    crumbs = [(c["message"], c.get("data", {})) for c in event["breadcrumbs"]["values"]
              if c["category"] == "safety"]
    assert crumbs == [
        ("User blocked", {"userId": "bob", "callEnded": True}),
        ("User unblocked", {"userId": "bob"}),
        ("User blocked", {"userId": "carol", "callEnded": False}),
        ("User reported", {"userId": "carol", "reason": "spam", "reportId": report_id}),
    ]
    assert lines == ["alice blocked bob, ending their call",
                     "Call of alice and bob ended: alice blocked", "alice unblocked bob",
                     "alice blocked carol", f"alice reported carol (spam): report {report_id}"]
    assert 'aleatoria_reports_total{reason="spam"} 1.0' in metrics
    assert "aleatoria_blocks_total 2.0" in metrics
