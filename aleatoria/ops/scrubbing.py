"""
What never reaches Sentry: the secrets the daemon was given, and whatever
looks like a token (a JWT, a C{token=}, C{password=} or C{secret=} value),
wherever in an event it appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentry_sdk.scrubber import EventScrubber

_FILTERED = "[Filtered]"
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_TOKEN_PARAM = re.compile(r"((?:token|password|secret)=)[^&\s\"']+", re.IGNORECASE)


def scrubber() -> EventScrubber:
    """
    The SDK's scrubber, minus its rule against C{ip_address}: the user's
    address is context operators asked for, set by us, never sent by default.
    """
    from sentry_sdk.scrubber import DEFAULT_PII_DENYLIST, EventScrubber

    return EventScrubber(pii_denylist=[k for k in DEFAULT_PII_DENYLIST if k != "ip_address"])


def scrubbed(value: Any, secrets: Iterable[str]) -> Any:  # an event of the SDK: its JSON
    """C{value} with secrets and token-like strings replaced, recursively."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _FILTERED)
        value = _JWT.sub(_FILTERED, value)
        return _TOKEN_PARAM.sub(r"\1" + _FILTERED, value)
    if isinstance(value, dict):
        return {k: scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, secrets) for v in value]
    return value
