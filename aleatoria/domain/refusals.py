"""
The errors that cross the domain's edges: L{StoreUnavailable}, which a
backend raises, and the L{Refused} family the domain raises, each of
which the wire names with a code.
"""


class StoreUnavailable(Exception):
    """
    The backend cannot serve right now (down, unreachable, overloaded).
    The backend itself logs the outage once; callers need not.
    """


class Refused(Exception):
    """
    The domain will not carry out what a client asked; the first argument
    is a sentence for the client, the keywords are details that go with it.
    C{fault} names the operation under which a refusal is reported as the
    client's fault (what an honest client does not send), if it is one.
    """

    def __init__(self, sentence: str, fault: str | None = None, **details: object) -> None:
        super().__init__(sentence)
        self.sentence = sentence
        self.fault = fault
        self.details = details


class Invalid(Refused):
    """Well-typed but unusable: a bad name, an empty field, a bad limit."""


class TooLarge(Refused):
    """Over a size limit."""


class NotInRoom(Refused):
    """Something only a member of the room may do."""


class Forbidden(Refused):
    """Not allowed to this client, whatever it sends."""


class Offline(Refused):
    """The addressee is not connected anywhere."""


class QuotaExceeded(Refused):
    """The user has used up what it may leave behind for now."""


class Busy(Refused):
    """The addressee is in a call with somebody else."""


class Unavailable(Refused):
    """Part of the service failed; the client may try again later."""


class RateLimited(Refused):
    """Asked too often; C{retryAfter} (milliseconds) says when it may be again."""
