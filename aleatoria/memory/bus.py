"""
The other daemons that share this daemon's store -- its peers.

The hub delivers to its own connections itself; everything for a user or a
room member on another daemon goes through an L{IPeers}. A daemon on the
memory store is alone (L{LonePeers}); on Redis, L{aleatoria.peers.redis.RedisPeers}.
"""

from twisted.internet.defer import succeed
from zope.interface import implementer

from aleatoria.domain.ports import IPeers
from aleatoria.domain.values import Posted
from aleatoria.memory.inbox import numbered


@implementer(IPeers)
class LonePeers:
    """
    The daemon alone: nobody is anywhere else, everybody hears everything.
    A stream message is numbered by the store and handed to the hub at
    once: one process, one order.

    @param store: the daemon's L{aleatoria.interfaces.IStore}.
    """

    subscribed = True

    def __init__(self, store):
        self.node = store.node
        self._store = store
        self._receiver = None

    def post_room(self, room, envelope, at_ns):
        d = self._store.save_room_message(room, envelope, at_ns)

        def kept(saved):
            self._receiver.room_post(room, numbered(envelope, saved[0]))
            return Posted()

        return d.addCallback(kept)

    def post_direct(self, sender, recipient, envelope):
        d = self._store.save_direct_message(sender, recipient, envelope)

        def kept(saved):
            online = False
            for user, place in saved[0].items():
                here = self._receiver.inbox_post(user, numbered(envelope, place))
                online = online or (here and user == recipient)
            return Posted(online=online)

        return d.addCallback(kept)

    def deliver(self, user, envelope):
        return succeed(False)

    def broadcast(self, room, envelope):
        return succeed(None)

    def replaced(self, owner, user):
        pass

    def kick(self, user, reason):
        return succeed(False)

    def daemons(self):
        return succeed([{"node": self.node, **self._receiver.load()}])

    def listen(self, receiver):
        self._receiver = receiver

    def leave(self):
        return succeed(None)
