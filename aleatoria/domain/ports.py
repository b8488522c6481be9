"""
The seams of the domain: what it needs of a connection (L{IConnection})
and of the edge that renders pushes (L{IOutlet}); the backends, cut by
concept as centrifuge cuts them -- streams (L{IStreams}), sessions
(L{ISessions}), matchmaking (L{IMatchmaking}) and the other daemons
(L{IBus}), and those of safety (L{aleatoria.domain.safety_ports}); what
it offers them in return (L{IReceiver}); and who hears what happened
(L{IObserver}, L{IAccounting}). Each backend seam has a memory and a
Redis implementation, held to one contract suite.
"""

from zope.interface import Attribute, Interface

ADDRESS_KEPT = 86400
"""Seconds a user's client address is kept after its session ends (for reports)."""

MEETING_KEPT = 86400
"""Seconds a user's most recent match is remembered after it ended (for reports)."""


class IConnection(Interface):
    """One client's connection, as the domain sees it."""

    user_id = Attribute("The identity the handshake established.")
    address = Attribute("The client's address, as it is counted and logged.")
    segment = Attribute("The part of the matchmaking pool the user is paired within.")

    def may_join(room):
        """Whether the connection's credentials allow joining C{room}."""

    def budget_refills_in():
        """Seconds until the user's message budget is full again (0: it is)."""

    def spent_elsewhere(seconds):
        """
        The user spent its budget on a connection a daemon has released:
        it is full again only in C{seconds}.
        """

    def charge(messages):
        """The request being handled costs C{messages} more of the user's rate."""

    def writable():
        """Fire once the client takes more (at once if it does now), or it is dropped."""

    def holding(count):
        """C{count} messages wait for the client behind a replay (past a bound: dropped)."""

    def replaced():
        """A newer connection of the same user took over: close this one."""

    def going_away():
        """The daemon is stopping: close this one, saying when to come back."""

    def kick(reason):
        """The server API cut the user off: close this one, giving C{reason}."""


class IOutlet(Interface):
    """How pushes reach connections here: the edge renders them."""

    def send(connections, push):
        """Render C{push} (once per view of it) and write it to each of C{connections}."""


class IStreams(Interface):
    """
    Numbered, kept streams -- a room's messages, a user's inbox -- each
    message kept and handed to every daemon in one atomic step.
    """

    def post_room(message, at_ns):
        """
        Number a L{RoomMessage} (of time C{at_ns}, Unix nanoseconds, by
        which history is ordered and paged) in its room's stream, keep it,
        and hand it numbered to every daemon's receiver
        (L{IReceiver.room_post}), this one's too, in the order of the
        stream's offsets. Fire with a L{Posted}.

        @raise StoreUnavailable: it may not have been kept, nor handed on.
        """

    def post_direct(message):
        """
        Keep a L{DirectMessage} in the pair's history and number it into
        both inboxes (C{system} has none); hand each party its copy on its
        daemon (L{IReceiver.inbox_post}). Fire with a L{Posted}.

        @raise Forbidden: either party blocks the other (L{aleatoria.domain.safety_ports.IBlocks}):
            nothing is kept, nobody handed anything.
        @raise StoreUnavailable: as for L{post_room}.
        """

    def room_history(room, limit, before_ns=None):
        """Up to C{limit} messages of C{room}, newest first, older than C{before_ns}."""

    def room_since(room, offset, epoch):
        """
        The L{Since} of C{room}'s stream after C{offset} of C{epoch}: the
        messages only when all that was missed is kept, of that epoch.
        """

    def direct_history(reader, other, limit):
        """The last C{limit} messages of the pair, oldest first, numbered as C{reader}'s inbox."""

    def inbox_since(user, offset, epoch):
        """The L{Since} of C{user}'s inbox, as L{room_since}."""

    def conversations(user, limit, before=0):
        """Up to C{limit} L{Conversation}s, the most recent first, before offset C{before}."""

    def mark_read(user, partner, offset):
        """C{user} read its conversation with C{partner} up to C{offset}: fire with what is left."""

    def full():
        """Whether history is at its byte budget with nothing left to evict."""


class ISessions(Interface):
    """Which daemon serves each user, and which rooms each user is in."""

    node = Attribute("This daemon's id among those sharing the backend.")

    def claim(user, address=""):
        """
        C{user} connected here, from client C{address}: make this daemon
        its owner, ending any earlier session (out of its rooms and the
        pool), and take back its held match, if any, or the match of the
        session it replaces. Fire with a L{Claim}.
        """

    def release(user, budget_refills_in=0, hold=False):
        """
        C{user}'s connection here is gone; its message budget refills in
        C{budget_refills_in} seconds. If this daemon still owns it: out of
        its rooms and the pool, its match ended -- or, with C{hold} (the
        connection was lost, not closed), held for the call grace: ended
        only if the user has not claimed it back when that is over
        (L{IReceiver.call_lapsed}). Fire with the former partner of an
        ended match, or C{None}.
        """

    def join_room(room, user):
        """Record C{user} as a member of C{room}."""

    def leave_room(room, user):
        """Forget C{user}'s membership of C{room}."""

    def room_members(room, limit, after):
        """One page of C{room}'s live members: C{(page, count, next)}."""

    def rooms(limit, after):
        """One page of the rooms with members: C{([(room, members)], total)}."""

    def user_rooms(user):
        """The rooms C{user} is in, sorted."""

    def address_of(user):
        """
        The client address C{user} last connected from: while it is
        connected, and for L{ADDRESS_KEPT} seconds after; else C{None}.
        """

    def whereabouts(user):
        """The id of the live daemon that has C{user}, or C{None}."""

    def daemons():
        """Each live daemon's load: C{{"node", "connections", "rooms"}}."""

    def listen(receiver):
        """Tell C{receiver} (an L{IReceiver}) of sessions that ended elsewhere."""

    def leave():
        """Every session here is released (at shutdown): the others may forget this daemon."""

    def ping():
        """Fire when the backend answers, errback when it cannot."""


class IMatchmaking(Interface):
    """The pool of users waiting for a call, and the matches (see L{matchmaking})."""

    def offer(user, seat):
        """
        C{user} is available: into the pool, or once its match ends; as
        its L{aleatoria.domain.matchmaking.Seat} says (C{None}: as it last said).
        """

    def withdraw(user):
        """C{user} is unavailable: out of the pool."""

    def pair(requester, skipped, ask):
        """
        Serve one C{request_random_peer}, atomically, held to the rules
        of C{ask} (an L{aleatoria.domain.matchmaking.Ask}): fire with a
        L{Pairing}. Two users either of whom blocks the other
        (L{aleatoria.domain.safety_ports.IBlocks}) are never paired.
        """

    def hang_up(user, peer):
        """End the match of C{user} and C{peer}, if matched; fire with whether they were."""

    def match_of(user):
        """The user's current L{Match}, or C{None}."""

    def grace_left(user):
        """Milliseconds until the grace of C{user}'s held match ends (0: none held)."""

    def pool_size():
        """The number of users in the pool."""

    def last_match(user):
        """
        C{user}'s current match, or else its most recent one (for
        L{MEETING_KEPT} seconds after it ended): a L{Meeting}, or C{None}.
        """


class IBus(Interface):
    """The other daemons sharing the backend, as the domain reaches them."""

    node = Attribute("This daemon's id.")
    subscribed = Attribute("Whether what the others send reaches this daemon.")

    def deliver(user, push):
        """
        Hand C{push} to C{user} on the daemon that has it; fire with whether
        a live daemon has the user.

        @raise StoreUnavailable: that daemon lives but did not hear it.
        """

    def broadcast(room, push):
        """
        Hand C{push} to C{room}'s members on every other daemon.

        @raise StoreUnavailable: some daemon may have missed it.
        """

    def replaced(owner, user):
        """Tell daemon C{owner} that C{user} connected here instead."""

    def kick(user, reason):
        """Have the daemon that has C{user} close it; fire with whether one has it."""

    def listen(receiver):
        """Hand what the other daemons send to C{receiver}, an L{IReceiver}."""


class IReceiver(Interface):
    """What the backends hand the domain (the hub provides it)."""

    def sessions_here():
        """Each user connected here, with its rooms: C{{user: [room, ...]}}."""

    def calls_here():
        """Each user here in a call: C{{user: [partner, role]}}, as it was told."""

    def load():
        """This daemon's connections and rooms: C{{"connections": N, "rooms": M}}."""

    def room_post(message):
        """A numbered L{RoomMessage}, for its room's members here."""

    def inbox_post(user, message):
        """A numbered L{DirectMessage} of C{user}'s inbox, if C{user} is here; whether it is."""

    def deliver_local(user, push):
        """Another daemon hands C{push} to C{user}, if connected here."""

    def broadcast_local(room, push):
        """Another daemon hands C{push} to C{room}'s members here."""

    def replaced_elsewhere(user):
        """C{user} connected to another daemon: close its connection here."""

    def kicked(user, reason):
        """Another daemon's server API cut C{user} off."""

    def reaped(user, rooms, peer):
        """C{user}'s daemon died: it left C{rooms}; C{peer}, if any, lost its call."""

    def call_lapsed(user, peer):
        """C{user} did not come back within the grace of its held call: C{peer} lost it."""


class IObserver(Interface):
    """Hears each L{aleatoria.domain.events.Fact}: log lines, breadcrumbs, counters."""

    def happened(fact):
        """C{fact} happened on this daemon."""


class IAccounting(Interface):
    """How the domain's calls to its seams are timed, traced, and their failures reported."""

    def timed(d, operation):
        """Time the Deferred C{d} of C{operation} (a metric, a span of the trace)."""

    def failed(failure, operation, user=None):
        """Report an unexpected failure of C{operation} (not an outage: the backend tells those)."""
