"""The answers of the server API other than success: RFC 9457 problem documents."""

from __future__ import annotations

import json
from collections.abc import Iterable


class Problem(Exception):
    """An answer other than success, as RFC 9457 has it."""

    def __init__(self, status: int, title: str, detail: str, code: str,
                 headers: Iterable[tuple[bytes, bytes]] = (), **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.headers = headers
        self.extra = extra

    def body(self) -> bytes:
        return json.dumps({"type": "about:blank", "title": self.title, "status": self.status,
                           "detail": self.detail, "code": self.code, **self.extra}).encode()
