"""
The gate against lost errors: every test fails if, while it ran, Twisted
logged an unhandled error in a Deferred (a failure nobody consumed, logged
when the Deferred is garbage collected) or an unhandled error in a reactor
callback.
"""

import gc

from twisted.logger import formatEvent, globalLogPublisher


class LostErrors:
    """Watches the global log for errors nobody handled."""

    def __init__(self):
        self.seen = []
        self._after_header = False

    def __enter__(self):
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc):
        gc.collect()
        globalLogPublisher.removeObserver(self)

    def __call__(self, event):
        header = event.get("log_format") == "Unhandled error in Deferred:"
        unhandled = event.get("why") == "Unhandled Error"
        if header:
            self._after_header = True
            return
        failure = event.get("log_failure")
        if failure is not None and (self._after_header or unhandled):
            self.seen.append(f"{formatEvent(event)} {failure.getTraceback()}")
        self._after_header = False

    def take(self):
        """What was seen so far, forgotten: for a test that makes one on purpose."""
        seen, self.seen = self.seen, []
        return seen
