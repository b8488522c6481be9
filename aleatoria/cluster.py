"""
Daemons that share one Redis behave as one server.

The hub delivers to its own connections itself; everything for a user or a
room member on another daemon goes through an L{ICluster}. A daemon on the
memory store is alone (L{LoneDaemon}). On Redis, L{RedisCluster} posts to
the daemon that owns a user (its channel, found through the user's presence
key in the same script that publishes) and to one channel all daemons hear
for room traffic; it also reaps the sessions of daemons that died.
"""

import msgspec
from msgspec import Raw
from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

import txredisapi

from .messages import InvalidMessage, decode_stored, encode
from .store import StoreUnavailable
from .store.redis import consume_connection_error


class ICluster(Interface):
    node = Attribute("This daemon's id among those sharing the store.")

    def deliver(user, envelope):
        """
        Send C{envelope} to C{user}, connected to another daemon; fire with
        whether a live daemon has the user.
        """

    def broadcast(room, envelope):
        """Send C{envelope} to the members of C{room} on the other daemons."""

    def replaced(owner, user):
        """Tell daemon C{owner} that C{user} has connected here instead."""


class IReceiver(Interface):
    """What a cluster hands over to the hub (the hub provides it)."""

    def deliver_local(user, envelope):
        """Another daemon sends C{envelope} to C{user}, if connected here."""

    def broadcast_local(room, envelope):
        """Another daemon sends C{envelope} to the members of C{room} here."""

    def replaced_elsewhere(user):
        """C{user} connected to another daemon: close its connection here."""

    def peer_gone(peer, user):
        """C{user}'s daemon died while C{user} was in a call with C{peer}."""


@implementer(ICluster)
class LoneDaemon:
    """The cluster of one daemon: nobody is anywhere else."""

    node = "local"

    def deliver(self, user, envelope):
        return succeed(False)

    def broadcast(self, room, envelope):
        pass

    def replaced(self, owner, user):
        pass


class _Post(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one daemon sends another."""

    kind: str
    origin: str
    target: str
    envelope: Raw = Raw()


_encode_post = msgspec.json.Encoder().encode
_decode_post = msgspec.json.Decoder(_Post).decode

_NODE_CHANNEL = "aleatoria:node:"
_ROOMS_CHANNEL = "aleatoria:rooms"


class _Subscriber(txredisapi.SubscriberProtocol):
    def connectionMade(self):
        d = super().connectionMade()
        d.addCallback(lambda _: self.subscribe(self.factory.channels))
        d.addCallback(lambda _: self.factory.cluster._subscribed(True))
        return d

    def connectionLost(self, why):
        self.factory.cluster._subscribed(False)
        return super().connectionLost(why)

    def messageReceived(self, pattern, channel, message):
        self.factory.cluster._received(message)


@implementer(ICluster)
class RedisCluster(Service):
    """
    @param store: the L{aleatoria.store.redis.RedisStore} (its node id and
        scripts are the cluster's).
    @param endpoint: where Redis is, for the subscribing connection.
    @param receiver: the L{IReceiver} (the hub), set before starting.
    @param reactor: the clock for reaping.
    @param report: the daemon's L{aleatoria.reporting.Report}.
    """

    _log = Logger()
    receiver = None
    subscribed = False

    def __init__(self, store, endpoint, reactor, report, *, username=None, password=None,
                 reap_interval=15.0):
        self._store = store
        self._report = report
        self.node = store.node
        self._endpoint = endpoint
        self._factory = txredisapi.RedisFactory(
            uuid="subscriber", dbid=None, poolsize=1, isLazy=True,
            username=username or None, password=password or None,
            convertNumbers=False,
        )
        consume_connection_error(self._factory)
        self._factory.protocol = _Subscriber
        self._factory.cluster = self
        prefix = store.prefix
        self._factory.channels = [prefix + _NODE_CHANNEL + self.node, prefix + _ROOMS_CHANNEL]
        self._reaper = LoopingCall(self._reap)
        self._reaper.clock = reactor
        self._reap_interval = reap_interval

    def startService(self):
        super().startService()
        self._factory.startConnecting(self._endpoint)
        self._reaper.start(self._reap_interval, now=False)

    def stopService(self):
        super().stopService()
        self._reaper.stop()
        return self._factory.disconnect()

    # Sending

    def deliver(self, user, envelope):
        post = _encode_post(_Post("user", self.node, user, Raw(encode(envelope))))
        return self._store.publish_to_owner(user, _NODE_CHANNEL, post)

    def broadcast(self, room, envelope):
        post = _encode_post(_Post("room", self.node, room, Raw(encode(envelope))))
        self._quietly(self._store.publish(_ROOMS_CHANNEL, post), "broadcast")

    def replaced(self, owner, user):
        post = _encode_post(_Post("replaced", self.node, user))
        self._quietly(self._store.publish(_NODE_CHANNEL + owner, post), "replaced")

    def _quietly(self, d, operation):
        """An outage is the store's to report; anything else is reported here."""
        d.addErrback(lambda failure: failure.trap(StoreUnavailable) and None)
        d.addErrback(self._report.errback(f"cluster_{operation}"))

    # Receiving

    def _subscribed(self, up):
        self.subscribed = up

    def _received(self, message):
        try:
            post = _decode_post(message)
            envelope = decode_stored(bytes(post.envelope)) if post.envelope else None
        except (msgspec.DecodeError, InvalidMessage) as e:
            self._log.warn("Dropped an unreadable post from another daemon: {why}", why=e)
            return
        if post.origin == self.node:
            return
        if post.kind == "user":
            self.receiver.deliver_local(post.target, envelope)
        elif post.kind == "room":
            self.receiver.broadcast_local(post.target, envelope)
        elif post.kind == "replaced":
            self.receiver.replaced_elsewhere(post.target)

    # Daemons that died

    def _reap(self):
        d = self._store.reap()
        d.addCallback(self._reaped)
        self._quietly(d, "reap")

    def _reaped(self, orphans):
        for user, peer in orphans:
            self._log.info("Reaped {user}, whose daemon died", user=user)
            self.receiver.peer_gone(peer, user)
