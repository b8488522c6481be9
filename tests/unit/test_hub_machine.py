"""
The hub's promises under random interleavings of what users do -- connect,
leave, join, chat, look for peers, hang up, block, send garbage -- checked after
every step, on the embedded store (many examples). The same machine on
Redis: tests/integration/test_hub_machine_redis.py.
"""

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aleatoria.edge.wire import (
    ChatPayload,
    Envelope,
    InvalidMessage,
    PeerRequest,
    UserRef,
    decode,
)
from aleatoria.ops.metrics import Metrics

from ..support.hub import Recorder, make_hub
from ..support.strategies import EXAMPLES, envelopes

USERS = ["u1", "u2", "u3", "u4"]
ROOMS = ["r1", "r2"]
HISTORY = 1000
BARRIER = "~barrier~"
"""Who the marker posts of L{RedisBarrier} are for: a user no one can be."""


class HubMachine(RuleBasedStateMachine):
    """
    Users connect, leave, join, chat, look for peers and hang up in any
    order, and send garbage; the hub must keep every promise throughout.
    C{store} makes the backend, does each step and waits until it is quiet.
    """

    store = None

    def __init__(self):
        super().__init__()
        self.metrics = Metrics()
        self.backend, self.hub = self.store.start(self.metrics)
        self.conns = {}
        self.lost = set()
        """Users whose connection was lost (not closed): their calls may be held."""
        self.members = {room: set() for room in ROOMS}
        self.stored = {room: [] for room in ROOMS}
        self.blocks = set()
        """Who blocks whom, as (blocker, blocked)."""

    def teardown(self):
        def leave():
            for conn in list(self.conns.values()):
                self.hub.disconnected(conn)
        self.store.step(leave)
        self.store.stop(self.backend)

    def online(self):
        return sorted(self.conns)

    def blocked(self, user_a, user_b):
        return (user_a, user_b) in self.blocks or (user_b, user_a) in self.blocks

    def ask(self, seam, *args):
        return self.store.ask(seam, *args)

    def send(self, user, envelope):
        self.store.step(self.hub.router.received, self.conns[user], envelope)

    def sent_since(self, before):
        """What each connection was sent since C{before} (lengths), chat only."""
        return {user: [m for m in conn.sent[before[user]:] if m.type == "chat_message"]
                for user, conn in self.conns.items()}

    @rule(user=st.sampled_from(USERS), room=st.sampled_from(ROOMS))
    def connect(self, user, room):
        old = self.conns.get(user)
        if old is not None:
            for members in self.members.values():
                members.discard(user)
        conn = self.conns[user] = Recorder(user)
        self.lost.discard(user)
        self.store.step(self.hub.connected, conn, room)
        self.members[room].add(user)
        if old is not None:
            assert old.closed == "replaced"

    @precondition(lambda self: self.conns)
    @rule(data=st.data())
    def disconnect(self, data):
        user = data.draw(st.sampled_from(self.online()))
        self.store.step(self.hub.disconnected, self.conns.pop(user))
        for members in self.members.values():
            members.discard(user)

    @precondition(lambda self: self.conns)
    @rule(data=st.data())
    def lose_connection(self, data):
        """The connection drops, not closed by the client: its call, if any, is held."""
        user = data.draw(st.sampled_from(self.online()))
        self.store.step(self.hub.disconnected, self.conns.pop(user), False)
        self.lost.add(user)
        for members in self.members.values():
            members.discard(user)

    @rule()
    def graces_pass(self):
        """Time passes (where the store's clock is the test's): every held call ends."""
        if self.store.pass_time():
            self.lost.clear()

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), room=st.sampled_from(ROOMS), joining=st.booleans())
    def join_or_leave(self, data, room, joining):
        user = data.draw(st.sampled_from(self.online()))
        self.send(user, Envelope(type="join_room" if joining else "leave_room", room=room))
        (self.members[room].add if joining else self.members[room].discard)(user)

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), room=st.sampled_from(ROOMS), text=st.text(min_size=1, max_size=5))
    def chat_in_room(self, data, room, text):
        user = data.draw(st.sampled_from(self.online()))
        before = {u: len(c.sent) for u, c in self.conns.items()}
        self.send(user, Envelope(type="chat_message", room=room, payload=ChatPayload(text)))
        allowed = user in self.members[room]
        if allowed:
            self.stored[room].append(text)
        for other, got in self.sent_since(before).items():
            if other == user:
                assert [m.incoming for m in got] == ([False] if allowed else [])
            elif allowed and other in self.members[room]:
                assert [(m.payload, m.incoming) for m in got] == [(ChatPayload(text), True)]
            else:
                assert got == []

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), to=st.sampled_from(USERS + ["nobody"]))
    def chat_direct(self, data, to):
        user = data.draw(st.sampled_from(self.online()))
        before = {u: len(c.sent) for u, c in self.conns.items()}
        self.send(user, Envelope(type="chat_message", toUser=to, payload=ChatPayload("dm")))
        for other, got in self.sent_since(before).items():
            expected = 1 if (other == user and to != user) or (other == to != user) else 0
            if self.blocked(user, to):
                expected = 0
            assert len(got) == expected

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), kind=st.sampled_from(["user_available_webrtc",
                                                "user_unavailable_webrtc"]))
    def availability(self, data, kind):
        self.send(data.draw(st.sampled_from(self.online())), Envelope(type=kind))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), skip=st.sampled_from(USERS + [""]))
    def request_peer(self, data, skip):
        user = data.draw(st.sampled_from(self.online()))
        self.send(user, Envelope(type="request_random_peer", payload=PeerRequest(skip)))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), to=st.sampled_from(USERS))
    def hangup(self, data, to):
        self.send(data.draw(st.sampled_from(self.online())), Envelope(type="hangup", toUser=to))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), other=st.sampled_from(USERS), blocking=st.booleans())
    def block(self, data, other, blocking):
        user = data.draw(st.sampled_from(self.online()))
        kind = "block_user" if blocking else "unblock_user"
        self.send(user, Envelope(type=kind, payload=UserRef(other)))
        if other != user:
            (self.blocks.add if blocking else self.blocks.discard)((user, other))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), document=envelopes)
    def garbage(self, data, document):
        user = data.draw(st.sampled_from(self.online()))
        try:
            envelope = decode(json.dumps(document).encode())
        except InvalidMessage:
            # answered by the protocol (tests/integration/test_errors.py); the hub never sees it
            return
        if envelope.type == "chat_message" or envelope.type in ("join_room", "leave_room"):
            return  # modelled by the rules above; as garbage they would change membership
        self.send(user, envelope)

    @invariant()
    def nothing_failed(self):
        assert self.metrics.errors.labels("unavailable")._value.get() == 0

    @invariant()
    def pairings_are_mutual_and_live(self):
        matchmaking = self.backend.matchmaking
        for user in USERS:
            match = self.ask(matchmaking.match_of, user)
            if match is None:
                continue
            assert user in self.conns or user in self.lost
            assert match.peer in self.conns or match.peer in self.lost
            assert not self.blocked(user, match.peer)
            partner = self.ask(matchmaking.match_of, match.peer)
            assert partner.peer == user and {partner.role, match.role} == {"polite", "impolite"}
        assert int(self.ask(matchmaking.pool_size)) <= len(self.conns)

    @invariant()
    def no_disconnected_user_anywhere(self):
        sessions = self.backend.sessions
        assert set(self.hub.sessions_here()) <= set(self.conns)
        for user in set(USERS) - set(self.conns):
            assert self.ask(sessions.whereabouts, user) is None
            assert self.ask(sessions.user_rooms, user) == []
        for room in ROOMS:
            assert set(self.hub.members(room)) == self.members[room]
            members, _, _ = self.ask(sessions.room_members, room, 100, "")
            assert set(members) == self.members[room]

    @invariant()
    def history_holds_only_allowed_messages(self):
        for room in ROOMS:
            history = self.ask(self.backend.streams.room_history, room, HISTORY)
            assert [m.content for m in reversed(history)] == self.stored[room]


GRACE = 20
"""The call grace of the embedded store's machine (on Redis, the default)."""


class Memory:
    """
    The embedded store, on a clock of its own, driven in the test's own
    thread: every step is done when it returns.
    """

    def start(self, metrics):
        from twisted.internet.task import Clock

        from aleatoria.memory.backend import MemoryBackend

        self.clock = clock = Clock()
        backend = MemoryBackend(clock, 3600, HISTORY, call_grace=GRACE)
        hub = make_hub(clock, backend, metrics=metrics)
        backend.startService()
        return backend, hub

    def pass_time(self):
        self.clock.pump([1] * (GRACE + 1))
        return True

    def step(self, act, *args):
        act(*args)

    def ask(self, seam, *args):
        answers = []
        seam(*args).addBoth(answers.append)
        assert answers and not isinstance(answers[0], Exception), answers
        return answers[0]

    def stop(self, backend):
        backend.stopService()


MACHINE_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_hub_keeps_its_promises_on_the_embedded_store():
    class OnMemory(HubMachine):
        store = Memory()

    run_state_machine_as_test(OnMemory, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=40, **MACHINE_SETTINGS))
