"""
Daemons that share one Redis behave as one server.

L{RedisPeers} posts to the daemon that owns a user (its channel, found
through the user's presence key in the same script that publishes) and to
one channel all daemons hear for room traffic. It is also the one owner of
liveness: this daemon's heartbeat, rejoining after an outage, reaping the
daemons that died, and the pub/sub connection.
"""

import json

import msgspec
from msgspec import Raw
from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.ports import IPeers, StoreUnavailable
from aleatoria.domain.values import Posted
from aleatoria.edge.wire import InvalidMessage, decode_stored, encode
from aleatoria.memory.inbox import numbered
from aleatoria.redis import scripts
from aleatoria.redis.link import Link
from aleatoria.redis.store import Announce


class _Post(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one daemon sends another."""

    kind: str
    origin: str
    target: str
    envelope: Raw = Raw()
    reason: str = ""


_encode_post = msgspec.json.Encoder().encode
_decode_post = msgspec.json.Decoder(_Post).decode

_NODE_CHANNEL = "aleatoria:node:"
_ROOMS_CHANNEL = "aleatoria:rooms"

HANDED_MEMORY = 1000

BEATS_PER_TTL = 5
"""Heartbeats within one C{node_ttl}: a daemon counts as dead after missing that many."""

RESYNC_TTLS = 6
"""The periodic resync, which heals a release lost to a timeout, every so many C{node_ttl}."""


@implementer(IPeers)
class RedisPeers(Service):
    """
    The other daemons on the same Redis, and this daemon's place among
    them: the one owner of liveness. It keeps this daemon's heartbeat,
    rejoins (heartbeat and resync in one script) whenever Redis returns or
    the heartbeat is found lapsed, reaps daemons that died, and holds the
    pub/sub connection, pinged at every heartbeat.

    @param store: the L{aleatoria.store.redis.RedisStore}: its node id is
        this daemon's, and it runs the scripts.
    @param subscriber: where Redis is and how to log in, as
        L{aleatoria.txredis.Link} takes it (endpoint, where, and keywords).
    @param node_ttl: seconds after its last heartbeat that a silent daemon
        counts as dead, and its users as gone.
    @param report: the daemon's L{aleatoria.reporting.Report}.
    """

    _log = Logger()

    def __init__(self, store, subscriber, reactor, report, *, node_ttl):
        self._store = store
        self._report = report
        self._reactor = reactor
        self._node_ttl = node_ttl
        self._life_ms = int(node_ttl * 1000)
        self._receiver = None
        self._handed = {}
        """
        Stream messages handed over while not listening, the latest
        L{HANDED_MEMORY} (a dict as an ordered set: one lookup per post).
        """
        self.node = store.node
        endpoint, where, link_options = subscriber
        channels = [store.prefix + _NODE_CHANNEL + self.node, store.prefix + _ROOMS_CHANNEL]
        self._link = Link(endpoint, where, reactor, channels=channels,
                          on_message=self._received, **link_options)
        self._joined_at = None
        self._timers = [self._timer(self._beat, node_ttl / BEATS_PER_TTL),
                        self._timer(self._reap, node_ttl / BEATS_PER_TTL / 2),
                        self._timer(self.resync, node_ttl * RESYNC_TTLS)]
        store.watch(self._store_linked)

    def _timer(self, function, interval):
        call = LoopingCall(function)
        call.clock = self._reactor
        return call, interval

    @property
    def subscribed(self):
        """Whether posts from the other daemons reach this one."""
        return self._link.up

    @property
    def joined(self):
        """Whether this daemon counts among the live ones (since Redis last returned)."""
        return self._joined_at is not None

    def startService(self):
        super().startService()
        self._link.start()
        for call, interval in self._timers:
            call.start(interval, now=False)

    def stopService(self):
        """Stop beating (should the hub not have left, the others reap) and unsubscribe."""
        super().stopService()
        self._stop_timers()
        return self._link.stop()

    def _stop_timers(self):
        for call, _ in self._timers:
            if call.running:
                call.stop()

    def listen(self, receiver):
        self._receiver = receiver

    def leave(self):
        self._stop_timers()
        d = self._store.run(scripts.LEAVE_PEERS, self.node, capped=False)
        d.addCallback(lambda _: self._log.info("Left the daemons sharing Redis"))
        self._quietly(d, "leave")
        return d

    # Liveness

    def _store_linked(self, up):
        self._joined_at = None
        if up:
            self.resync()

    def resync(self):
        """
        Renew the heartbeat and tell Redis who is connected here now, in
        which rooms; close connections another daemon claimed meanwhile.
        """
        joining = self._joined_at is None
        d = self._store.run(scripts.RESYNC, self.node, json.dumps(self._receiver.sessions()),
                            self._life_ms, capped=False)
        d.addCallback(self._resynced, joining)
        self._quietly(d, "resync")

    def _resynced(self, stale, joining):
        """C{stale}: users another daemon claimed meanwhile; their connections here close."""
        if joining:
            self._joined_at = self._reactor.seconds()
            self._log.info("Joined the daemons sharing Redis as node {node}", node=self.node)
        for user in stale:
            self._receiver.replaced_elsewhere(user)

    def _beat(self):
        if not self._store.connected:
            return
        if self._joined_at is None:
            return self.resync()
        d = self.heartbeat()
        d.addCallback(self._lapsed_or_not)
        self._quietly(d, "heartbeat")
        self._link.ping().addErrback(lambda failure: None)

    def heartbeat(self):
        """
        Tell the other daemons this one lives, for C{node_ttl} more seconds;
        fire with whether it was still alive in their eyes until now.
        """
        load = self._receiver.load() if self._receiver else {"connections": 0, "rooms": 0}
        d = self._store.run(scripts.HEARTBEAT, self.node, self._life_ms, load["connections"],
                            load["rooms"], capped=False)
        return d.addCallback(bool)

    def _lapsed_or_not(self, alive):
        """
        A lapsed heartbeat means a stall (of Redis, or of this daemon): rejoin,
        with the grace before reaping that a return from an outage gets.
        """
        if not alive:
            self._log.warn("This daemon's heartbeat had lapsed; telling Redis who is here again")
            self._joined_at = None
            self.resync()

    def _reap(self):
        """
        Reap daemons that died -- but not in the first C{node_ttl} after
        this one (re)joined: daemons that lost Redis along with it need as
        long to come back before their silence means anything.
        """
        if self._joined_at is None or self._reactor.seconds() - self._joined_at < self._node_ttl:
            return
        d = self._store.run(scripts.REAP, self.node, capped=False)
        d.addCallback(self._reaped)
        self._quietly(d, "reap")

    def _reaped(self, entries):
        """
        C{entries}: for each user of a dead daemon, cleaned up, its name,
        its live partner (or '') and its rooms.
        """
        for user, peer, *rooms in entries:
            self._log.info("Reaped {user}, whose daemon died", user=user)
            self._receiver.reaped(user, tuple(rooms), peer or None)

    def _quietly(self, d, operation):
        """An outage is the store's to report; anything else is reported here."""
        d.addErrback(lambda failure: failure.trap(StoreUnavailable) and None)
        d.addErrback(self._report.errback(f"peers_{operation}"))

    # Sending

    def deliver(self, user, envelope):
        """
        Post to the daemon that owns C{user}, in the script that looks it
        up; fire with whether a live daemon owns it.

        @raise StoreUnavailable: that daemon lives but did not hear it.
        """
        post = _encode_post(_Post("user", self.node, user, Raw(encode(envelope))))
        d = self._store.run(scripts.PUBLISH_TO_OWNER, user,
                            self._store.prefix + _NODE_CHANNEL, post)
        return d.addCallback(_heard, user)

    def broadcast(self, room, envelope):
        """
        Post to the channel every daemon hears.

        @raise StoreUnavailable: a live daemon was not listening.
        """
        post = _encode_post(_Post("room", self.node, room, Raw(encode(envelope))))
        d = self._store.run(scripts.PUBLISH_TO_ALL, self._store.prefix + _ROOMS_CHANNEL, post)
        return d.addCallback(_heard_by_all)

    def post_room(self, room, envelope, at_ns):
        """
        Keep C{envelope} in C{room}'s stream and publish it, numbered, to
        every daemon (this one too: all of them hear a room's messages in
        the order of their offsets) in one script.

        @raise StoreUnavailable: it may not have been kept (errback).
        """
        announce = Announce(self._store.prefix + _ROOMS_CHANNEL,
                            _post_head("room_stream", self.node, room), "}")
        d = self._store.save_room_message(room, envelope, at_ns, announce)

        def kept(saved):
            place, deaf = saved
            if not self.subscribed:
                self._hand_over("room_stream", room, numbered(envelope, place))
                deaf -= 1
            return Posted(missed=deaf > 0)

        return d.addCallback(kept)

    def post_direct(self, sender, recipient, envelope):
        """
        Keep C{envelope} in the pair's history and both inboxes, and publish
        each party's numbered copy to its daemon, in one script.

        @raise StoreUnavailable: it may not have been kept (errback).
        """
        heads = (_post_head("inbox", self.node, sender),
                 _post_head("inbox", self.node, recipient))
        announce = Announce(self._store.prefix + _NODE_CHANNEL, heads, "}")
        d = self._store.save_direct_message(sender, recipient, envelope, announce)

        def kept(saved):
            places, delivery = saved
            if not self.subscribed:
                for user, place in places.items():
                    here = self._hand_over("inbox", user, numbered(envelope, place))
                    if here and user == recipient:
                        delivery = 1
            return Posted(missed=delivery < 0, online=delivery != 0)

        return d.addCallback(kept)

    def _hand_over(self, kind, target, envelope):
        """
        This daemon is not listening, so its own post will not come back
        to it: hand the numbered message to the hub here and now -- once,
        should the subscription have come back in the meantime.
        """
        self._handed[(kind, target, envelope.epoch, envelope.offset)] = None
        if len(self._handed) > HANDED_MEMORY:
            del self._handed[next(iter(self._handed))]
        if kind == "room_stream":
            return self._receiver.room_post(target, envelope)
        return self._receiver.inbox_post(target, envelope)

    def replaced(self, owner, user):
        post = _encode_post(_Post("replaced", self.node, user))
        self._quietly(self._store.publish(_NODE_CHANNEL + owner, post), "replaced")

    def kick(self, user, reason):
        post = _encode_post(_Post("kick", self.node, user, reason=reason))
        d = self._store.run(scripts.PUBLISH_TO_OWNER, user,
                            self._store.prefix + _NODE_CHANNEL, post)
        return d.addCallback(_heard, user)

    def daemons(self):
        """Each live daemon's load as of its last beat; this one's as of now."""
        def loads(reply):
            found = [{"node": reply[i], "connections": int(reply[i + 1]),
                      "rooms": int(reply[i + 2])} for i in range(0, len(reply), 3)]
            return [{"node": self.node, **self._receiver.load()} if d["node"] == self.node
                    else d for d in found]

        return self._store.run(scripts.DAEMONS).addCallback(loads)

    # Receiving

    def _received(self, message):
        try:
            post = _decode_post(message)
            envelope = decode_stored(bytes(post.envelope)) if post.envelope else None
        except (msgspec.DecodeError, InvalidMessage) as e:
            self._log.warn("Dropped an unreadable post from another daemon: {why}", why=e)
            return
        if post.kind in ("room_stream", "inbox"):
            if self._handed and (post.kind, post.target, envelope.epoch,
                                 envelope.offset) in self._handed:
                return
            if post.kind == "room_stream":
                self._receiver.room_post(post.target, envelope)
            else:
                self._receiver.inbox_post(post.target, envelope)
        elif post.origin == self.node:
            return
        elif post.kind == "user":
            self._receiver.deliver_local(post.target, envelope)
        elif post.kind == "room":
            self._receiver.broadcast_local(post.target, envelope)
        elif post.kind == "replaced":
            self._receiver.replaced_elsewhere(post.target)
        elif post.kind == "kick":
            self._receiver.kicked(post.target, post.reason)


def _post_head(kind, origin, target):
    """A post up to its envelope: the numbered message and C{}} follow, in the script."""
    return _encode_post(_Post(kind, origin, target))[:-1].decode() + ',"envelope":'


def _heard(reply, user):
    if int(reply) < 0:
        raise StoreUnavailable(f"the daemon of {user} is not listening")
    return bool(int(reply))


def _heard_by_all(deaf):
    if int(deaf):
        raise StoreUnavailable(f"{deaf} daemon(s) not listening")
