"""
Where rooms, history and the matchmaking pool live.

One interface, :class:`IStore`, with an embedded in-memory backend (the
default: no set-up at all) and a Redis/Valkey backend for deployments that
must outlive a restart or span several daemons. Every method returns a
Deferred, whether or not the backend needs to wait, so callers never care
which backend they hold. A store deals in user ids, room names and
:class:`aleatoria.messages.Envelope` values; it never sees a connection.
"""

from zope.interface import Attribute, Interface


class StoreUnavailable(Exception):
    """
    The backend cannot serve right now (down, unreachable, overloaded).
    The backend itself logs the outage once; callers need not.
    """


class IStore(Interface):
    kind = Attribute("The backend, as /ready reports it: 'memory' or 'redis'.")

    def join_room(room, user):
        """Record C{user} as a member of C{room}."""

    def leave_room(room, user):
        """Forget C{user}'s membership of C{room}."""

    def room_members(room):
        """Fire with the member ids of C{room}, sorted."""

    def user_rooms(user):
        """Fire with the names of the rooms C{user} is in, sorted."""

    def save_room_message(room, envelope, at_ns):
        """
        Append C{envelope} to C{room}'s history at time C{at_ns} (Unix
        nanoseconds), drop the oldest beyond the history cap, and restart
        the history's time to live.
        """

    def room_messages(room, limit, before_ns=None):
        """
        Fire with up to C{limit} envelopes of C{room}, newest first, only
        those strictly older than C{before_ns} when it is given.
        """

    def save_direct_message(user_a, user_b, envelope):
        """
        Append C{envelope} to the conversation of the two users (in either
        order), drop the oldest beyond the cap, restart its time to live.
        """

    def direct_messages(user_a, user_b, limit):
        """Fire with the last C{limit} envelopes of the pair, oldest first."""

    def pool_add(user):
        """Put C{user} in the matchmaking pool."""

    def pool_remove(user):
        """Take C{user} out of the matchmaking pool."""

    def pool_pick(requester, exclude):
        """
        Atomically take C{requester} and one random other member of the pool,
        not in C{exclude}, out of the pool; fire with that member's id, or
        C{None} (and leave the pool untouched) when nobody fits.
        """

    def pool_size():
        """Fire with the number of users in the matchmaking pool."""

    def ping():
        """Fire when the backend answers, errback when it cannot."""


def direct_key(user_a: str, user_b: str) -> tuple[str, str]:
    """The two parties of a conversation, in the order the key uses."""
    return (user_a, user_b) if user_a <= user_b else (user_b, user_a)
