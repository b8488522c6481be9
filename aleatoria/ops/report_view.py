"""
A report as the app's people see it -- through the server API
(C{/api/v1/reports}) and in the C{report.created} webhook: one rendering
for both.
"""


def rendered(report):
    """A report as the API shows it."""
    return {
        "reportId": report.id, "createdAt": report.created_at, "reason": report.reason,
        "details": report.details,
        "reporter": {"userId": report.reporter, "address": report.reporter_address},
        "reported": {"userId": report.reported, "address": report.reported_address},
        "pairedAt": report.paired_at, "pairedSeconds": report.paired_seconds,
        "sharedInterests": report.shared_interests,
        "messages": [{"fromUser": m.sender, "toUser": m.recipient, "content": m.content,
                      "messageId": m.message_id, "createTime": m.create_time}
                     for m in report.messages],
    }
