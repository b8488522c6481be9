"""
The other daemons that share this daemon's store -- its peers.

The hub delivers to its own connections itself; everything for a user or a
room member on another daemon goes through an L{IPeers}. A daemon on the
memory store is alone (L{LonePeers}); on Redis, L{aleatoria.peers.redis.RedisPeers}.
"""

from twisted.internet.defer import succeed
from zope.interface import implementer

from ..interfaces import IPeers


@implementer(IPeers)
class LonePeers:
    """
    The daemon alone: nobody is anywhere else, everybody hears everything.

    @param node: this daemon's id, as its store knows it.
    """

    subscribed = True

    def __init__(self, node):
        self.node = node
        self._receiver = None

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
