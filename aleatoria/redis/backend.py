"""
The Redis/Valkey backend, on txredisapi, never blocking the reactor: for
deployments that must outlive a restart or span several daemons.

Keys are those of the Go server (docs/reference/keys.rst) under an
optional prefix, so a deployment can switch servers on the same database.
Every operation that writes more than one thing is one Lua script: one
round trip, atomic. Commands go through the L{CommandLink}, which fails
them fast while Redis is unreachable, times them out and bounds how many
wait; pushes between daemons go through pub/sub (L{RedisBus}).
"""

from __future__ import annotations

import uuid

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTime

from aleatoria.redis.bans import RedisBans
from aleatoria.redis.blocks import RedisBlocks
from aleatoria.redis.budget import Budget
from aleatoria.redis.bus import RedisBus
from aleatoria.redis.connection import CommandLink, Report
from aleatoria.redis.keys import Keys
from aleatoria.redis.link import LinkPlace
from aleatoria.redis.matchmaking import RedisMatchmaking
from aleatoria.redis.reports import RedisReports
from aleatoria.redis.sentinel import Sentinels
from aleatoria.redis.sessions import RedisSessions
from aleatoria.redis.streams import RedisStreams


class RedisBackend(MultiService):
    """
    Streams, sessions, matchmaking, blocks, reports, the bus and bans, on one Redis.

    @param link: where Redis is and how to log in: C{(endpoint, where,
        keywords)}, the keywords L{aleatoria.redis.link.Link}'s
        (C{timeout}, C{retry_max}, C{username}, C{password}).
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per pair.
    @param node_ttl: seconds after its last heartbeat that a silent daemon
        counts as dead.
    @param max_bytes: what Redis's C{used_memory} may be (L{Budget}).
    @param report: the daemon's L{aleatoria.ops.reporting.Report}.
    @param sentinels: the L{aleatoria.redis.sentinel.Sentinels} that name the
        primary, if they do (then C{link}'s endpoint is C{None}): both links
        connect where they say, and move on a failover.
    @param call_grace: seconds a call is held for a user whose connection
        was lost (L{RedisSessions}).
    """

    kind = "redis"

    def __init__(self, link: LinkPlace, reactor: IReactorTime, *, ttl: int, history_size: int,
                 node_ttl: float, prefix: str = "", db: int = 0, max_pending: int = 10000,
                 max_bytes: int | None = None, node: str | None = None,
                 report: Report | None = None, sentinels: Sentinels | None = None,
                 call_grace: float = 0) -> None:
        super().__init__()
        endpoint, where, options = link
        self.node = node or uuid.uuid4().hex
        self.keys = Keys(prefix)
        if sentinels is not None:
            sentinels.setServiceParent(self)
            endpoint = sentinels.endpoint()
        self.commands = CommandLink(endpoint, where, reactor, prefix=prefix,
                                    max_pending=max_pending, report=report, db=db,
                                    sentinels=sentinels is not None, **options)
        self.commands.setServiceParent(self)
        self.budget = Budget(self.commands, max_bytes, reactor)
        self.budget.setServiceParent(self)
        self.evictions = self.budget.evictions
        if sentinels is not None:
            endpoint = sentinels.endpoint()
        self.bus = RedisBus(self.commands, self.keys, (endpoint, where, options),
                            reactor, self.node)
        self.bus.setServiceParent(self)
        if sentinels is not None:
            sentinels.follow(self.commands.link.move)
            sentinels.follow(self.bus.link.move)
        self.commands.on_readonly = self.bus.link.move
        self.bans = RedisBans(self.commands, self.bus, reactor)
        self.bans.setServiceParent(self)
        # every caller gives a report (the daemon its own): sessions report their failures
        self.sessions = RedisSessions(self.commands, self.keys, self.bus, reactor,
                                      report,  # type: ignore[arg-type]
                                      node=self.node, node_ttl=node_ttl,
                                      call_grace=call_grace)
        self.sessions.setServiceParent(self)
        self.matchmaking = RedisMatchmaking(self.commands, self.keys)
        self.blocks = RedisBlocks(self.commands, self.keys)
        self.reports = RedisReports(self.commands, self.keys, reactor.seconds)
        self.streams = RedisStreams(self.commands, self.keys, self.bus, ttl=ttl,
                                    history_size=history_size, budget=self.budget)

    @property
    def connected(self) -> bool:
        return self.commands.connected
