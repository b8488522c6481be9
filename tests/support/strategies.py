"""
What the fuzzers and the hub's state machine draw from: envelopes of every
shape, the message types a client may name and some it may not.

ALEATORIA_FUZZ_EXAMPLES raises the number of examples (default 60) for a
longer run: ALEATORIA_FUZZ_EXAMPLES=2000 make test.
"""

import os

from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("ALEATORIA_FUZZ_EXAMPLES", "60"))
FIELDS = ["type", "fromUser", "toUser", "room", "payload", "messageId", "createTime",
          "incoming"]
TYPES = ["chat_message", "join_room", "leave_room", "get_rooms", "get_room_members",
         "user_available_webrtc", "user_unavailable_webrtc", "request_random_peer",
         "webrtc_offer", "webrtc_answer", "webrtc_candidate", "hangup",
         "get_recent_messages", "get_direct_messages", "assign_role", "nonsense"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS + ["content", "limit", "before", "withUser",
                                                "currentPeerId", "x"]), children, max_size=5),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | json_values},
    optional={field: json_values for field in FIELDS[1:]},
)
