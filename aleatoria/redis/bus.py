"""
Daemons that share one Redis hand each other pushes over pub/sub: each
daemon hears its own channel (what is for its users) and one all daemons
hear (room traffic). A push for a user is published to its daemon's
channel in the script that looks the user up; the streams publish what
they keep in the scripts that keep it (L{aleatoria.redis.streams}).
Posts are L{aleatoria.redis.codec} posts: a header, then the push.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from msgspec.structs import replace
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from aleatoria.domain.events import (
    DirectMessage,
    Kicked,
    MemberJoined,
    MemberLeft,
    Push,
    Replaced,
    RoomMessage,
)
from aleatoria.domain.ports import IBus, IReceiver
from aleatoria.domain.refusals import StoreUnavailable
from aleatoria.redis import codec
from aleatoria.redis.connection import CommandLink, Reply
from aleatoria.redis.keys import Keys
from aleatoria.redis.link import Link, LinkPlace

_M = TypeVar("_M", RoomMessage, DirectMessage)

HANDED_MEMORY = 1000
"""Stream messages this daemon handed itself while not listening, remembered."""


@implementer(IBus)
class RedisBus(Service):
    """
    @param commands: the L{aleatoria.redis.connection.CommandLink}.
    @param keys: the L{aleatoria.redis.keys.Keys}.
    @param subscriber: where Redis is and how to log in, as
        L{aleatoria.redis.link.Link} takes it (endpoint, where, keywords).
    @param node: this daemon's id.
    """

    _log = Logger()

    def __init__(self, commands: CommandLink, keys: Keys, subscriber: LinkPlace,
                 reactor: IReactorTime, node: str) -> None:
        self.node = node
        self._commands = commands
        self._keys = keys
        self._receiver: IReceiver = None  # type: ignore[assignment]  # until listen()
        self._hearers: dict[str, Callable[[Any], object]] = {}
        self._watchers: list[Callable[[bool], object]] = []
        self._handed: dict[tuple[str, str, str, int], None] = {}
        """
        Stream messages handed over while not listening, the latest
        L{HANDED_MEMORY} (a dict as an ordered set: one lookup per post).
        """
        endpoint, where, link_options = subscriber
        # the rooms' channel first: once a daemon hears its own, which is how
        # the others tell it listens (lua/library.lua), it hears both
        channels = [keys("rooms_channel"), keys("node_channel", node)]
        self.link = Link(endpoint, where, reactor, channels=channels,
                         on_message=self._received, on_change=self._changed, **link_options)

    @property
    def subscribed(self) -> bool:
        """Whether posts from the other daemons reach this one."""
        return self.link.up

    def startService(self) -> None:
        super().startService()
        self.link.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.link.stop()

    def listen(self, receiver: IReceiver) -> None:
        self._receiver = receiver

    def hear(self, kind: str, handler: Callable[[Any], object]) -> None:
        """Hand C{handler} each push the other daemons post as C{kind} to every daemon."""
        self._hearers[kind] = handler

    def watch(self, watcher: Callable[[bool], object]) -> None:
        """Call C{watcher(up)} each time the subscription is made or lost."""
        self._watchers.append(watcher)

    def _changed(self, up: bool) -> None:
        for watcher in self._watchers:
            watcher(up)

    # Sending

    def deliver(self, user: str, push: Push) -> Deferred[bool]:
        """
        Post to the daemon that owns C{user}, in the script that looks it
        up; fire with whether a live daemon owns it.

        @raise StoreUnavailable: that daemon lives but did not hear it.
        """
        post = codec.post("user", self.node, user, push)
        return self._commands.run("publish_to_owner", user, post).addCallback(_heard, user)

    def broadcast(self, room: str, push: MemberJoined | MemberLeft) -> Deferred[None]:
        """
        Post to the channel every daemon hears.

        @raise StoreUnavailable: a live daemon was not listening.
        """
        post = codec.post("room", self.node, room, push)
        return self._commands.run("publish_to_all", post).addCallback(_heard_by_all)

    def replaced(self, owner: str, user: str) -> Deferred[object]:
        post = codec.post("replaced", self.node, user, Replaced(user))
        return self._commands.call("publish", self._keys("node_channel", owner), post)

    def kick(self, user: str, reason: str) -> Deferred[bool]:
        post = codec.post("kick", self.node, user, Kicked(user, reason))
        return self._commands.run("publish_to_owner", user, post).addCallback(_heard, user)

    # What the streams kept while this daemon did not listen

    def hand_room(self, message: RoomMessage, offset: int, epoch: str) -> None:
        """
        This daemon is not listening, so the stream's post of its own will
        not come back to it: hand it to the hub here and now -- once, should
        the subscription have come back meanwhile.
        """
        numbered = self._hand("stream", message.room, message, offset, epoch)
        self._receiver.room_post(numbered)

    def hand_inbox(self, user: str, message: DirectMessage, offset: int, epoch: str) -> bool:
        numbered = self._hand("inbox", user, message, offset, epoch)
        return self._receiver.inbox_post(user, numbered)

    def _hand(self, kind: str, target: str, message: _M, offset: int, epoch: str) -> _M:
        self._handed[(kind, target, epoch, offset)] = None
        if len(self._handed) > HANDED_MEMORY:
            del self._handed[next(iter(self._handed))]
        return replace(message, offset=offset, epoch=epoch)

    # Receiving

    def _received(self, data: bytes | str) -> None:
        try:
            kind, origin, target, push = codec.read_post(data)
        except codec.Unreadable as why:
            self._log.warn("Dropped an unreadable post from another daemon: {why}", why=why)
            return
        receiver = self._receiver
        if kind in ("stream", "inbox"):
            if self._handed and (kind, target, push.epoch, push.offset) in self._handed:
                return
            if kind == "stream":
                receiver.room_post(push)
            else:
                receiver.inbox_post(target, push)
        elif origin == self.node:
            return
        elif kind == "user":
            receiver.deliver_local(target, push)
        elif kind == "room":
            receiver.broadcast_local(target, push)
        elif kind == "replaced":
            receiver.replaced_elsewhere(target)
        elif kind == "kick":
            receiver.kicked(target, push.reason)
        elif kind in self._hearers:
            self._hearers[kind](push)


def _heard(reply: Reply, user: str) -> bool:
    if int(reply) < 0:
        raise StoreUnavailable(f"the daemon of {user} is not listening")
    return bool(int(reply))


def _heard_by_all(deaf: Reply) -> None:
    if int(deaf):
        raise StoreUnavailable(f"{deaf} daemon(s) not listening")
