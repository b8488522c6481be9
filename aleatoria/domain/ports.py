"""
The seams between the parts of the daemon: what the hub needs of a
connection (L{IConnection}), of the store (L{IStore}) and of the other
daemons (L{IPeers}), and what it offers them in return (L{IReceiver});
and the errors that cross those seams: L{StoreUnavailable}, and the
L{Refused} family the hub raises and the wire turns into error codes.
"""

from zope.interface import Attribute, Interface


class IConnection(Interface):
    """What the hub needs of one client's connection."""

    user_id = Attribute("The identity the handshake established.")
    peer = Attribute("The remote address, for log lines.")
    report = Attribute("The connection's L{aleatoria.reporting.Report}.")

    def may_join(room):
        """Whether the connection's credentials allow joining C{room}."""

    def send(prepared):
        """Queue a message made by the hub's C{prepare} function."""

    def replaced():
        """A newer connection of the same user took over: close this one."""

    def rested_in():
        """Seconds until the user's message budget is full again (0: it is)."""

    def rest_in(seconds):
        """
        The user spent its budget on another connection, which a daemon
        released: it is full again only in C{seconds}.
        """

    def charge(messages):
        """
        The request being handled costs C{messages} more of the user's
        message rate (and of its address's) than the one it was.
        """

    def writable():
        """
        A Deferred that fires once the client's transport takes more (at
        once if it does now), for a sender that writes only as the client
        reads. A client that stops reading meanwhile is dropped, as one
        whose queue is full would be; it fires then too.
        """

    def holding(count):
        """
        C{count} messages are held back for the client (behind a replay):
        past what may wait for it, it is dropped as one that is not reading.
        """

    def going_away():
        """The daemon is stopping: close this one, saying when to come back."""

    def kick(reason):
        """The server API cut the user off: close this one, giving C{reason}."""


class StoreUnavailable(Exception):
    """
    The backend cannot serve right now (down, unreachable, overloaded).
    The backend itself logs the outage once; callers need not.
    """


class Refused(Exception):
    """
    The hub will not carry out what a client asked; the first argument is
    a sentence for the client, the keywords are details that go with it.
    Each subclass is one reason, which the wire names with a code.
    """

    def __init__(self, sentence, **details):
        super().__init__(sentence)
        self.sentence = sentence
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


class IStore(Interface):
    kind = Attribute("The backend, as /ready reports it: 'memory' or 'redis'.")
    node = Attribute("This daemon's id among those sharing the store.")

    def join_room(room, user):
        """Record C{user} as a member of C{room}."""

    def leave_room(room, user):
        """Forget C{user}'s membership of C{room}."""

    def room_members(room, limit, after):
        """
        Fire with one page of C{room}'s members that have a live session:
        up to C{limit} ids in order (of their UTF-8 bytes), those after
        C{after} (C{""}: from the first); how many there are in all; and
        the C{after} of the next page, or C{None} if none follows. A page
        costs its size, not the room's.
        """

    def rooms(limit, after):
        """
        Fire with one page of the rooms that have members, on every daemon:
        up to C{limit} C{(room, members)} pairs by name, those after
        C{after}; and how many rooms there are in all.
        """

    def user_rooms(user):
        """Fire with the names of the rooms C{user} is in, sorted."""

    def whereabouts(user):
        """Fire with the id of the live daemon that has C{user}, or C{None}."""

    def save_room_message(room, envelope, at_ns, announce=None):
        """
        Number C{envelope} in C{room}'s stream (its offset, and the stream's
        epoch), append it to the history at time C{at_ns} (Unix
        nanoseconds), drop the oldest beyond the cap, and restart the
        history's time to live. A store shared by several daemons also
        publishes it, numbered, in the same step, as C{announce} says.
        Fire with its L{aleatoria.store.Place} and how many live daemons
        were not listening.
        """

    def room_messages(room, limit, before_ns=None):
        """
        Fire with up to C{limit} envelopes of C{room}, newest first, only
        those strictly older than C{before_ns} when it is given.
        """

    def room_since(room, offset, epoch):
        """
        Fire with the L{aleatoria.store.Since} of C{room}'s stream after
        C{offset} of C{epoch}. Messages are read only when they may all be
        had -- the stream's epoch (or offset 0), an offset before the last,
        a gap within the kept history -- and then only the gap's: a replay
        costs what it replays.
        """

    def save_direct_message(sender, recipient, envelope, announce=None):
        """
        Append C{envelope} to the conversation of the two users, drop the
        oldest beyond the cap, restart its time to live; number it into
        each party's inbox (C{system} has none) -- its conversations and
        the recipient's unread count too. A shared store also publishes
        each party's copy to its daemon, as C{announce} says. Fire with
        the L{aleatoria.store.Place} in each inbox, by user, and whether
        the recipient's daemon heard it (1), the recipient is on no live
        daemon (0), or its daemon did not hear (-1); 0 when not announced.
        """

    def inbox_since(user, offset, epoch):
        """
        Fire with the L{aleatoria.store.Since} of C{user}'s inbox after
        C{offset} of C{epoch}, read as L{room_since} reads.
        """

    def conversations(user, limit, before=0):
        """
        Fire with up to C{limit} L{aleatoria.store.Conversation}s of C{user},
        the most recent first, those whose last message is before inbox
        offset C{before} (if given).
        """

    def mark_read(user, partner, offset):
        """
        C{user} has read its conversation with C{partner} up to its inbox
        offset C{offset}: fire with what is left unread there. It costs
        what it marks, not what the conversation keeps.
        """

    def full():
        """
        Whether what is kept has reached the store's byte quota, if it has
        one, with no history left to evict: then nothing more may be
        stored. Below that, a store evicts the streams last written longest
        ago (rooms, pairs' direct messages, inboxes) to stay within it; a
        stream written again after its eviction begins a new epoch.
        """

    def direct_messages(user_a, user_b, limit):
        """
        Fire with the last C{limit} envelopes of the pair, oldest first,
        numbered as C{user_a}'s inbox numbers them.
        """

    # Sessions: which daemon serves a user

    def claim(user):
        """
        C{user} has connected to this daemon. Make this daemon its owner; if
        an earlier session of the user is still on record (another daemon's,
        or a dead one's), end it here and now: out of its rooms and the pool,
        its match ended. Fire with a L{Claim}.
        """

    def release(user, rested_in=0):
        """
        C{user}'s connection to this daemon is gone; its message budget is
        full again in C{rested_in} seconds, which the next claim of the user
        tells (L{aleatoria.store.Claim}), on whichever daemon. If this daemon still
        owns the user, take it out of its rooms and the pool and end its
        match; fire with the former partner's id. If another daemon has
        claimed the user since, change nothing and fire with C{None}.
        """

    # Matchmaking: the pool and the matches (see aleatoria.matchmaking)

    def offer(user):
        """
        C{user} is available: put it in the pool, or, while it is matched,
        once its match ends.
        """

    def withdraw(user):
        """C{user} is unavailable: out of the pool, and no longer waiting to enter it."""

    def pair(requester, skipped):
        """
        Serve one C{request_random_peer}, atomically; fire with a
        L{aleatoria.matchmaking.Pairing}.

        A matched requester whose C{skipped} names its peer ends that match
        and is paired anew; a matched requester that names anybody else gets
        its current match back. An unmatched one is paired with a random
        member of the pool other than itself and C{skipped}: both leave the
        pool, the requester impolite, the peer polite.
        """

    def hang_up(user, peer):
        """End the match of C{user} and C{peer}, if matched; fire with whether they were."""

    def match_of(user):
        """
        Fire with the user's current L{aleatoria.matchmaking.Match}, or
        C{None}: whom signaling to the user may come from.
        """

    def pool_size():
        """Fire with the number of users in the matchmaking pool."""

    def ping():
        """Fire when the backend answers, errback when it cannot."""


class IPeers(Interface):
    """The other daemons sharing the store, as the hub reaches them."""

    node = Attribute("This daemon's id among those sharing the store.")

    def post_room(room, envelope, at_ns):
        """
        Keep C{envelope} in C{room}'s stream, numbered, and hand it to the
        room's members on every daemon -- this one included, through
        L{IReceiver.room_post} -- in the order of the stream's offsets.
        Fire with a L{aleatoria.peers.Posted}.

        @raise StoreUnavailable: it may not have been kept, nor handed to
            anybody (errback).
        """

    def post_direct(sender, recipient, envelope):
        """
        Keep C{envelope} in the pair's history and both inboxes, numbered,
        and hand each party its copy wherever it is (L{IReceiver.inbox_post}).
        Fire with a L{aleatoria.peers.Posted}.

        @raise StoreUnavailable: as for L{post_room}.
        """

    def deliver(user, envelope):
        """
        Send C{envelope} to C{user}, connected to another daemon; fire with
        whether a live daemon has the user.

        @raise StoreUnavailable: it could not be handed over (errback).
        """

    def broadcast(room, envelope):
        """
        Send C{envelope} to the members of C{room} on the other daemons.

        @raise StoreUnavailable: some daemon may have missed it (errback).
        """

    def replaced(owner, user):
        """Tell daemon C{owner} that C{user} has connected here instead."""

    def kick(user, reason):
        """
        Have the daemon that has C{user} close its connection, giving
        C{reason}; fire with whether a live daemon has the user.

        @raise StoreUnavailable: that daemon lives but did not hear it (errback).
        """

    def daemons():
        """
        Fire with each live daemon's load: C{{"node", "connections",
        "rooms"}}, as of its last heartbeat (this one's, as of now).
        """

    def listen(receiver):
        """Hand what the other daemons send to C{receiver}, an L{IReceiver}."""

    def leave():
        """
        Every session here is released (at shutdown): the other daemons may
        forget this one. Until then, should it die, they reap its users.
        """


class IReceiver(Interface):
    """What the peers hand over to the hub (the hub provides it)."""

    def sessions():
        """Each user connected here, with its rooms: C{{user: [room, ...]}}."""

    def deliver_local(user, envelope):
        """Another daemon sends C{envelope} to C{user}, if connected here."""

    def broadcast_local(room, envelope):
        """Another daemon sends C{envelope} to the members of C{room} here."""

    def room_post(room, envelope):
        """A message of C{room}'s stream, numbered, for its members here."""

    def inbox_post(user, envelope):
        """
        A message of C{user}'s inbox, numbered, for the user if it is
        connected here; whether it is.
        """

    def replaced_elsewhere(user):
        """C{user} connected to another daemon: close its connection here."""

    def kicked(user, reason):
        """Another daemon's server API cut C{user} off: close its connection here."""

    def load():
        """This daemon's connections and rooms: C{{"connections": N, "rooms": M}}."""

    def reaped(user, rooms, peer):
        """
        C{user}'s daemon died: it left C{rooms}, and C{peer} (or C{None}),
        its partner in a call, should hear the call is over.
        """
