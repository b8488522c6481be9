"""
The Redis/Valkey store, on txredisapi, never blocking the reactor.

Keys are those of the Go server (PROTOCOL.md section 6) under an optional
prefix, so a deployment can switch servers on the same database. Every
operation that writes more than one thing is one Lua script: one round
trip, atomic. While Redis is unreachable every call fails at once with
L{StoreUnavailable} rather than queueing, every command has a timeout, and
no more than C{max_pending} commands wait at any time: a dead or hung
Redis costs errors, never unbounded memory.
"""

from twisted.application.service import Service
from twisted.internet.defer import fail
from twisted.logger import Logger
from zope.interface import implementer

import txredisapi

from ..messages import InvalidMessage, decode_stored, encode
from . import IStore, StoreUnavailable, direct_key

_SAVE_ROOM_MESSAGE = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
"""

_SAVE_DIRECT_MESSAGE = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""

_JOIN = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
"""

_LEAVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
"""

_PICK = """
-- KEYS[1] the pool; ARGV[1] the requester; ARGV[2..] users not to pick.
local excluded = {}
for i = 1, #ARGV do excluded[ARGV[i]] = true end
local sample = redis.call('SRANDMEMBER', KEYS[1], #ARGV + 1)
for _, user in ipairs(sample) do
  if not excluded[user] then
    redis.call('SREM', KEYS[1], ARGV[1], user)
    return user
  end
end
return false
"""


class _Factory(txredisapi.RedisFactory):
    """Reconnects sooner than txredisapi's default, and reports the link's state."""

    initialDelay = 0.5
    maxDelay = 5

    def __init__(self, store, **kwargs):
        super().__init__(**kwargs)
        self._store = store

    def addConnection(self, conn):
        super().addConnection(conn)
        if conn in self.pool:
            self._store._linked(True)

    def delConnection(self, conn):
        super().delConnection(conn)
        if not self.size:
            self._store._linked(False)


@implementer(IStore)
class RedisStore(Service):
    """
    @param endpoint: an L{IStreamClientEndpoint} to Redis (TLS-wrapped or not).
    @param where: C{host:port}, for log lines.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per pair.
    @param timeout: seconds before a command is given up.
    @param max_pending: commands that may wait for Redis at once.
    """

    kind = "redis"
    _log = Logger()

    def __init__(self, endpoint, where, reactor, *, ttl, history_size, prefix="",
                 username=None, password=None, db=0, timeout=2.0, max_pending=10000):
        self._reactor = reactor
        self._where = where
        self._ttl = int(ttl)
        self._history_size = history_size
        self._prefix = prefix
        self._timeout = timeout
        self._max_pending = max_pending
        self._pending = 0
        self.connected = False
        self._factory = _Factory(
            self, uuid=where, dbid=db, poolsize=1, isLazy=True,
            password=password or None, username=username or None,
            convertNumbers=False, replyTimeout=timeout,
        )
        self._redis = self._factory.handler
        self._endpoint = endpoint

    def startService(self):
        super().startService()
        self._log.info("Connecting to Redis at {where}", where=self._where)
        self._factory.startConnecting(self._endpoint)
        self._reactor.callLater(self._timeout, self._still_unreachable)

    def _still_unreachable(self):
        if self.running and not self.connected:
            self._log.warn(
                "Redis at {where} is unreachable (down, or refusing our "
                "credentials); serving live traffic only until it answers",
                where=self._where,
            )

    def stopService(self):
        super().stopService()
        return self._factory.disconnect()

    def _linked(self, up):
        if up == self.connected:
            return
        self.connected = up
        if up:
            self._log.info("Redis at {where} connected", where=self._where)
        else:
            self._log.warn(
                "Redis at {where} lost; history, rooms and matchmaking are "
                "unavailable until it returns", where=self._where,
            )

    def _key(self, *parts):
        return self._prefix + ":".join(parts)

    def _call(self, method, *args):
        """
        Run one command with a timeout; fail at once when Redis is
        unreachable or too many commands wait already.
        """
        if not self.connected:
            return fail(StoreUnavailable(f"Redis at {self._where} is not connected"))
        if self._pending >= self._max_pending:
            return fail(StoreUnavailable("too many Redis commands waiting"))
        self._pending += 1
        d = getattr(self._redis, method)(*args)
        d.addTimeout(self._timeout, self._reactor)
        d.addErrback(self._translate)
        d.addBoth(self._done)
        return d

    def _done(self, result):
        self._pending -= 1
        return result

    def _translate(self, failure):
        failure.trap(txredisapi.ConnectionError, txredisapi.TimeoutError,
                     TimeoutError, ConnectionError)
        raise StoreUnavailable(failure.getErrorMessage())

    def _script(self, script, keys, args):
        return self._call("eval", script, keys, [str(a) for a in args])

    def _envelopes(self, entries):
        envelopes = []
        for entry in entries:
            try:
                envelopes.append(decode_stored(entry.encode()))
            except InvalidMessage as e:
                self._log.warn("Skipped an unreadable stored message: {why}", why=e)
        return envelopes

    # Rooms

    def join_room(self, room, user):
        return self._script(_JOIN, [self._key("room", "members", room),
                                    self._key("user", "rooms", user)], [user, room])

    def leave_room(self, room, user):
        return self._script(_LEAVE, [self._key("room", "members", room),
                                     self._key("user", "rooms", user)], [user, room])

    def room_members(self, room):
        return self._call("smembers", self._key("room", "members", room)).addCallback(sorted)

    def user_rooms(self, user):
        return self._call("smembers", self._key("user", "rooms", user)).addCallback(sorted)

    # History

    def save_room_message(self, room, envelope, at_ns):
        return self._script(
            _SAVE_ROOM_MESSAGE, [self._key("room", "messages", room)],
            [at_ns, encode(envelope).decode(), self._history_size, self._ttl],
        )

    def room_messages(self, room, limit, before_ns=None):
        high = "+inf" if before_ns is None else f"({before_ns}"
        d = self._call("execute_command", "ZREVRANGEBYSCORE",
                       self._key("room", "messages", room), high, "-inf",
                       "LIMIT", 0, limit)
        return d.addCallback(self._envelopes)

    def save_direct_message(self, user_a, user_b, envelope):
        return self._script(
            _SAVE_DIRECT_MESSAGE, [self._key("dm", *direct_key(user_a, user_b))],
            [encode(envelope).decode(), self._history_size, self._ttl],
        )

    def direct_messages(self, user_a, user_b, limit):
        d = self._call("lrange", self._key("dm", *direct_key(user_a, user_b)), -limit, -1)
        return d.addCallback(self._envelopes)

    # Matchmaking pool

    def pool_add(self, user):
        return self._call("sadd", self._key("available", "webrtc"), user)

    def pool_remove(self, user):
        return self._call("srem", self._key("available", "webrtc"), user)

    def pool_pick(self, requester, exclude):
        d = self._script(_PICK, [self._key("available", "webrtc")],
                         [requester, *sorted(exclude - {requester})])
        return d.addCallback(lambda peer: peer or None)

    def pool_size(self):
        return self._call("scard", self._key("available", "webrtc"))

    def ping(self):
        return self._call("ping")
