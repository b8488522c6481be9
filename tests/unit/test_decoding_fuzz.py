"""
Fuzzing the decoder: random bytes and JSON in, an envelope or a refusal out.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from aleatoria.edge.wire import InvalidMessage, decode

from ..support.strategies import EXAMPLES, envelopes


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_refuse(frame):
    """Whatever the bytes, decoding yields an envelope or InvalidMessage, nothing else."""
    try:
        envelope = decode(frame)
    except InvalidMessage:
        return
    assert isinstance(envelope.type, str)


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(envelopes)
def test_any_envelope_decodes_to_typed_fields_or_refuses(document):
    """A decoded envelope always has the types the hub relies on."""
    try:
        envelope = decode(json.dumps(document).encode())
    except InvalidMessage:
        return
    for field in ("type", "fromUser", "toUser", "room", "messageId", "createTime"):
        assert isinstance(getattr(envelope, field), str)
    assert envelope.fromUser == "" and envelope.createTime == ""
