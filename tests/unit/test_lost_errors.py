"""The gate of conftest.py catches errors that nobody handled, and only those."""

import gc

from twisted.internet.defer import Deferred, fail


def test_a_dropped_failure_is_caught(lost_errors):
    """A Deferred that is collected holding a failure fails the test."""
    fail(RuntimeError("nobody listens"))
    gc.collect()
    (seen,) = lost_errors.take()
    assert "nobody listens" in seen


def test_a_handled_failure_is_not(lost_errors):
    """A failure that an errback consumes is no news."""
    d = Deferred()
    d.addErrback(lambda failure: None)
    d.errback(RuntimeError("handled"))
    del d
    gc.collect()
    assert lost_errors.take() == []
