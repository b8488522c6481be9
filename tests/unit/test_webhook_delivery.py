"""
One URL's queue of webhooks on a fake clock, with answers the test gives
(failure injection): requests in flight, the back-off of a failing
endpoint and its cap, a message that fails going to the back, expiry,
a full queue, and the stop.
"""

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from aleatoria.ops.webhook_delivery import (
    IN_FLIGHT,
    LONGEST_WAIT,
    SHUTDOWN_SECONDS,
    Endpoint,
    Message,
)


class Posts:
    """The requests the endpoint made, each answered when the test says."""

    def __init__(self, clock):
        self.clock = clock
        self.pending = []
        self.made = []

    def __call__(self, url, message):
        d = Deferred()
        self.pending.append((message, d))
        self.made.append((self.clock.seconds(), message.id))
        return d

    def answer(self, code=204, index=0):
        message, d = self.pending.pop(index)
        d.callback(code)
        return message.id


class Told:
    def __init__(self):
        self.said = []

    def delivered(self, endpoint, message):
        self.said.append(("delivered", message.id))

    def failed(self, endpoint, message, why):
        self.said.append(("failed", message.id, why))

    def recovered(self, endpoint, failures):
        self.said.append(("recovered", failures))

    def dropped(self, endpoint, message, why):
        self.said.append(("dropped", message.id, why))


class Longest:
    """Jitter that always waits the longest: the waits are exact."""

    def uniform(self, low, high):
        return high


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def posts(clock):
    return Posts(clock)


@pytest.fixture
def told():
    return Told()


def endpoint(clock, posts, told, capacity=100):
    return Endpoint("http://x.example/hook", posts, clock, capacity, told, rng=Longest())


def messages(count, expires=3600.0):
    return [Message(f"m{i}", "user.connected", b"{}", expires) for i in range(count)]


def test_a_few_in_flight_then_the_next_as_one_is_answered(clock, posts, told):
    """At most IN_FLIGHT requests at once; an answer lets the next one go."""
    hooks = endpoint(clock, posts, told)
    for message in messages(IN_FLIGHT + 2):
        hooks.send(message)
    assert len(posts.pending) == IN_FLIGHT and len(hooks) == IN_FLIGHT + 2
    posts.answer(200)
    assert len(posts.pending) == IN_FLIGHT
    assert told.said == [("delivered", "m0")]


def test_a_failing_endpoint_backs_off_one_request_at_a_time(clock, posts, told):
    """
    After a failure the endpoint waits 0.5 s, doubling to 5 minutes, and
    sends one request at a time; the failed message goes to the back; one
    success and all flow again.
    """
    hooks = endpoint(clock, posts, told)
    for message in messages(2, expires=10.0**9):
        hooks.send(message)
    posts.answer(503)
    posts.answer(500)
    assert [s[:2] for s in told.said] == [("failed", "m0"), ("failed", "m1")]
    assert told.said[0][2] == "HTTP 503"
    waits = []
    for _ in range(12):
        (resume,) = clock.getDelayedCalls()
        waits.append(resume.getTime() - clock.seconds())
        clock.advance(waits[-1])
        assert len(posts.pending) == 1
        posts.answer(503)
    assert waits[:4] == [0.5, 2.0, 4.0, 8.0]
    assert max(waits) == LONGEST_WAIT
    clock.advance(LONGEST_WAIT)
    assert posts.answer(204) in ("m0", "m1")
    assert ("recovered", 14) in told.said
    assert len(posts.pending) == 1


def test_a_message_the_receiver_refuses_holds_up_no_other(clock, posts, told):
    """The one that failed goes to the back: the next is sent first."""
    hooks = endpoint(clock, posts, told, capacity=100)
    for message in messages(IN_FLIGHT + 1):
        hooks.send(message)
    posts.answer(400)
    clock.advance(1)
    while posts.pending:
        posts.answer(204)
    assert [id for _, id in posts.made][IN_FLIGHT:] == [f"m{IN_FLIGHT}", "m0"]


def test_past_its_time_a_message_is_dropped(clock, posts, told):
    """A message still failing when it expires is dropped, told why."""
    hooks = endpoint(clock, posts, told)
    (message,) = messages(1, expires=10.0)
    hooks.send(message)
    while posts.pending:
        posts.answer(503)
        clock.advance(LONGEST_WAIT)
    assert told.said[-1] == ("dropped", "m0", "expired")
    assert len(hooks) == 0 and clock.getDelayedCalls() == []


def test_a_full_queue_drops_what_comes(clock, posts, told):
    """Past the capacity (in flight included), new messages are dropped."""
    hooks = endpoint(clock, posts, told, capacity=2)
    for message in messages(3):
        hooks.send(message)
    assert told.said == [("dropped", "m2", "queue_full")]


def test_stop_sends_what_it_can_then_drops_the_rest(clock, posts, told):
    """A stop gives the queue SHUTDOWN_SECONDS, then cancels and drops; then it is done."""
    hooks = endpoint(clock, posts, told)
    for message in messages(IN_FLIGHT + 1):
        hooks.send(message)
    stopped = hooks.stop()
    posts.answer(204)
    assert not stopped.called
    clock.advance(SHUTDOWN_SECONDS)
    assert stopped.called
    assert [s for s in told.said if s[0] == "dropped"] == [
        ("dropped", f"m{i}", "shutdown") for i in range(1, IN_FLIGHT + 1)]
    hooks.send(messages(1)[0])
    assert told.said[-1] == ("dropped", "m0", "shutdown")


def test_stop_while_failing_drops_at_once(clock, posts, told):
    """An endpoint backing off is not waited for."""
    hooks = endpoint(clock, posts, told)
    for message in messages(2):
        hooks.send(message)
    posts.answer(503)
    stopped = hooks.stop()
    assert stopped.called and len(hooks) == 0
    assert clock.getDelayedCalls() == []


def test_an_attempt_without_an_answer_says_so(clock, posts, told):
    """A request that times out is a failure, told in words."""
    from twisted.internet.defer import TimeoutError

    hooks = endpoint(clock, posts, told)
    hooks.send(messages(1)[0])
    posts.pending.pop()[1].errback(TimeoutError(10.0, "Deferred"))
    assert told.said == [("failed", "m0", "no answer within 10 s")]
