"""
A report as the app's people see it -- through the server API
(C{/api/v1/reports}) and in the C{report.created} webhook: one rendering
for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aleatoria.domain.reports import Report


def rendered(report: Report) -> dict[str, object]:
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
