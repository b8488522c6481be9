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

import json
import random
import uuid
from dataclasses import dataclass

import txredisapi
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import fail
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IStore, StoreUnavailable
from ..matchmaking import Match, Pairing
from ..messages import InvalidMessage, decode_stored, encode
from ..txredis import Link
from . import Claim, direct_key

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

# The scripts below take the key prefix as ARGV[1] and build their keys from
# it: they touch keys that depend on what they read (a user's rooms, a
# match's peer), which a Redis Cluster would refuse. Aleatoria needs one
# Redis or Valkey primary (with replicas and failover if you like).
_LIBRARY = """
local P = ARGV[1]
local POOL = P .. 'available:webrtc'
local WAITING = P .. 'available:waiting'

-- A daemon is live while its heartbeat lasts; it hears posts only while its
-- pub/sub connection is subscribed (the kernel closes that one the moment
-- the process dies, kill -9 included).
local function live(node)
  return redis.call('EXISTS', P .. 'node:' .. node) == 1
end

local function listening(node)
  return redis.call('PUBSUB', 'NUMSUB', P .. 'aleatoria:node:' .. node)[2] > 0
end

-- present: its daemon lives; alive: and hears what is posted to it.
local function present(user)
  local node = redis.call('GET', P .. 'presence:' .. user)
  return node and live(node)
end

local function alive(user)
  local node = redis.call('GET', P .. 'presence:' .. user)
  return node and live(node) and listening(node)
end

local function end_match(user)
  local peer = redis.call('HGET', P .. 'match:' .. user, 'peer')
  if not peer then return false end
  redis.call('DEL', P .. 'match:' .. user, P .. 'match:' .. peer)
  for _, side in ipairs({user, peer}) do
    if redis.call('SREM', WAITING, side) == 1 then redis.call('SADD', POOL, side) end
  end
  return peer
end

local function end_session(user)
  local rooms = P .. 'user:rooms:' .. user
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    redis.call('SREM', P .. 'room:members:' .. room, user)
  end
  redis.call('DEL', rooms)
  redis.call('SREM', POOL, user)
  redis.call('SREM', WAITING, user)
  return end_match(user)
end
"""

_CLAIM = _LIBRARY + """
local user, me = ARGV[2], ARGV[3]
local previous = redis.call('GET', P .. 'presence:' .. user)
local ended = {previous, false}
if previous then
  for _, room in ipairs(redis.call('SMEMBERS', P .. 'user:rooms:' .. user)) do
    ended[#ended + 1] = room
  end
  ended[2] = end_session(user)
  redis.call('SREM', P .. 'node:' .. previous .. ':users', user)
end
redis.call('SET', P .. 'presence:' .. user, me)
redis.call('SADD', P .. 'node:' .. me .. ':users', user)
return ended
"""

_RELEASE = _LIBRARY + """
local user, me = ARGV[2], ARGV[3]
if redis.call('GET', P .. 'presence:' .. user) ~= me then return false end
redis.call('DEL', P .. 'presence:' .. user)
redis.call('SREM', P .. 'node:' .. me .. ':users', user)
return end_session(user)
"""

_OFFER = _LIBRARY + """
local user = ARGV[2]
if redis.call('EXISTS', P .. 'match:' .. user) == 1 then
  redis.call('SADD', WAITING, user)
else
  redis.call('SADD', POOL, user)
end
"""

_WITHDRAW = _LIBRARY + """
redis.call('SREM', POOL, ARGV[2])
redis.call('SREM', WAITING, ARGV[2])
"""

_PAIR = _LIBRARY + """
local requester, skipped = ARGV[2], ARGV[3]
local ended = false
local current = redis.call('HMGET', P .. 'match:' .. requester, 'peer', 'role')
if current[1] then
  if current[1] ~= skipped and present(current[1]) then
    return {'current', current[1], current[2], false}
  end
  -- a skip, or a partner whose daemon died: that match is over
  ended = end_match(requester)
end
-- SRANDMEMBER returns a small set whole and in a fixed order: start the
-- scan at a random offset from the caller (ARGV[4]).
for attempt = 1, 16 do
  local sample = redis.call('SRANDMEMBER', POOL, 4)
  for i = 1, #sample do
    local user = sample[(tonumber(ARGV[4]) + i) % #sample + 1]
    if user ~= requester and user ~= skipped then
      if alive(user) then
        redis.call('SREM', POOL, requester, user)
        redis.call('SREM', WAITING, requester, user)
        redis.call('HSET', P .. 'match:' .. requester, 'peer', user, 'role', 'impolite')
        redis.call('HSET', P .. 'match:' .. user, 'peer', requester, 'role', 'polite')
        return {'fresh', user, 'impolite', ended}
      elseif not present(user) then
        redis.call('SREM', POOL, user)
      end
    end
  end
  if #sample < 4 then break end
end
return {'none', false, false, ended}
"""

_HANG_UP = _LIBRARY + """
if redis.call('HGET', P .. 'match:' .. ARGV[2], 'peer') ~= ARGV[3] then return 0 end
end_match(ARGV[2])
return 1
"""

_ROOM_MEMBERS = _LIBRARY + """
local members = {}
for _, user in ipairs(redis.call('SMEMBERS', P .. 'room:members:' .. ARGV[2])) do
  if alive(user) then members[#members + 1] = user end
end
return members
"""

_HEARTBEAT = """
-- ARGV[2] this daemon, ARGV[3] the heartbeat's life in ms. 0 when the
-- heartbeat had lapsed: other daemons may have reaped our sessions.
local was = redis.call('SET', ARGV[1] .. 'node:' .. ARGV[2], '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', ARGV[1] .. 'nodes', ARGV[2])
return was and 1 or 0
"""

_REAP = _LIBRARY + """
-- Clean up after daemons that died without a word (never this one, ARGV[2]):
-- for each of their users, {user, live partner or '', rooms...}, for the
-- partners and the rooms' members to hear of it. Only a live daemon reaps:
-- if this one's heartbeat lapsed too, Redis or the daemon stalled, and the
-- others may be as alive as it is.
local reaped = {}
if not live(ARGV[2]) then return reaped end
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if node ~= ARGV[2] and not live(node) then
    local users = P .. 'node:' .. node .. ':users'
    for _, user in ipairs(redis.call('SMEMBERS', users)) do
      if redis.call('GET', P .. 'presence:' .. user) == node then
        redis.call('DEL', P .. 'presence:' .. user)
        local entry = {user, ''}
        for _, room in ipairs(redis.call('SMEMBERS', P .. 'user:rooms:' .. user)) do
          entry[#entry + 1] = room
        end
        local peer = end_session(user)
        if peer and present(peer) then entry[2] = peer end
        reaped[#reaped + 1] = entry
      end
    end
    redis.call('DEL', users)
    redis.call('SREM', P .. 'nodes', node)
  end
end
return reaped
"""

_PUBLISH_TO_OWNER = _LIBRARY + """
-- ARGV[2] a user, ARGV[3] the channel prefix, ARGV[4] the post. 1: posted
-- to the user's daemon; 0: no live daemon has the user; -1: its daemon
-- lives but nothing heard the post.
local owner = redis.call('GET', P .. 'presence:' .. ARGV[2])
if not owner or not live(owner) then return 0 end
if redis.call('PUBLISH', ARGV[3] .. owner, ARGV[4]) == 0 then return -1 end
return 1
"""

_PUBLISH_TO_ALL = _LIBRARY + """
-- ARGV[2] the channel, ARGV[3] the post. The number of live daemons that
-- are not listening, and so miss it.
local deaf = 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if live(node) and not listening(node) then deaf = deaf + 1 end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return deaf
"""

_RESYNC = _LIBRARY + """
-- After an outage: ARGV[2] this daemon, ARGV[3] JSON {user: [rooms]} of the
-- users connected here now, ARGV[4] the heartbeat's life in ms (renewed
-- first, so that no daemon reaps what this one is restoring). Sessions that
-- ended meanwhile are ended; the users still here are ours again (unless
-- another daemon claimed them: those are returned, their connections here
-- are stale).
local me, here = ARGV[2], cjson.decode(ARGV[3])
local mine = P .. 'node:' .. me .. ':users'
redis.call('SET', P .. 'node:' .. me, '1', 'PX', ARGV[4])
redis.call('SADD', P .. 'nodes', me)
for _, user in ipairs(redis.call('SMEMBERS', mine)) do
  if here[user] == nil then
    redis.call('SREM', mine, user)
    if redis.call('GET', P .. 'presence:' .. user) == me then
      redis.call('DEL', P .. 'presence:' .. user)
      end_session(user)
    end
  end
end
local stale = {}
for user, rooms in pairs(here) do
  local owner = redis.call('GET', P .. 'presence:' .. user)
  if owner and owner ~= me and live(owner) then
    stale[#stale + 1] = user
  else
    redis.call('SET', P .. 'presence:' .. user, me)
    redis.call('SADD', mine, user)
    for _, room in ipairs(rooms) do
      redis.call('SADD', P .. 'room:members:' .. room, user)
      redis.call('SADD', P .. 'user:rooms:' .. user, room)
    end
  end
end
return stale
"""

_LEAVE_CLUSTER = """
redis.call('DEL', ARGV[1] .. 'node:' .. ARGV[2], ARGV[1] .. 'node:' .. ARGV[2] .. ':users')
redis.call('SREM', ARGV[1] .. 'nodes', ARGV[2])
"""

_SCRIPTS = (_SAVE_ROOM_MESSAGE, _SAVE_DIRECT_MESSAGE, _JOIN, _LEAVE, _CLAIM, _RELEASE,
            _OFFER, _WITHDRAW, _PAIR, _HANG_UP, _ROOM_MEMBERS, _HEARTBEAT, _REAP,
            _PUBLISH_TO_OWNER, _PUBLISH_TO_ALL, _RESYNC, _LEAVE_CLUSTER)


@implementer(IStore)
class RedisStore(Service):
    """
    @param endpoint: an L{IStreamClientEndpoint} to Redis (TLS-wrapped or not).
    @param where: C{host:port}, for log lines.
    @param ttl: seconds a history lives after its last write.
    @param history_size: messages kept per room and per pair.
    @param timeout: seconds before a command (or the connect handshake) is
        given up.
    @param retry_max: the longest wait between reconnection attempts.
    @param max_pending: commands that may wait for Redis at once.
    @param node: this daemon's id among those sharing the Redis (random).
    @param report: the daemon's L{aleatoria.reporting.Report}, which hears
        of the link going down (a warning) and up (a breadcrumb).
    """

    kind = "redis"
    _log = Logger()

    def __init__(self, endpoint, where, reactor, *, ttl, history_size, prefix="",
                 username=None, password=None, db=0, timeout=2.0, retry_max=1.0,
                 max_pending=10000, node=None, report=None):
        self._reactor = reactor
        self._where = where
        self._ttl = int(ttl)
        self._history_size = history_size
        self.prefix = prefix
        self._timeout = timeout
        self._max_pending = max_pending
        self._pending = 0
        self._watchers = []
        self.link = Link(endpoint, where, reactor, timeout=timeout, retry_max=retry_max,
                         username=username, password=password, db=db, scripts=_SCRIPTS,
                         on_change=self._linked)
        self._redis = self.link.handler
        self.node = node or uuid.uuid4().hex
        self._rng = random.Random()
        self._report = report
        self._unreachable = None

    @property
    def connected(self):
        return self.link.up

    def watch(self, watcher):
        """Call C{watcher(up)} each time the link opens or is lost."""
        self._watchers.append(watcher)

    def startService(self):
        super().startService()
        self._log.info("Connecting to Redis at {where}", where=self._where)
        self.link.start()
        self._unreachable = self._reactor.callLater(self._timeout, self._still_unreachable)

    def _still_unreachable(self):
        if not self.connected:
            self._log.warn(
                "Redis at {where} is unreachable (down, or refusing our "
                "credentials); serving live traffic only until it answers",
                where=self._where,
            )
            if self._report is not None:
                self._report.capture_message(
                    "Redis unreachable", operation="redis_connect", redisAddr=self._where,
                )

    def stopService(self):
        super().stopService()
        if self._unreachable.active():
            self._unreachable.cancel()
        return self.link.stop()

    def _linked(self, up):
        if up:
            self._log.info("Redis at {where} connected", where=self._where)
            if self._report is not None:
                self._report.breadcrumb(
                    "redis", "Redis connected successfully", address=self._where
                )
        elif self.running:
            self._log.warn(
                "Redis at {where} lost; history, rooms and matchmaking are "
                "unavailable until it returns", where=self._where,
            )
            if self._report is not None:
                self._report.capture_message(
                    "Redis connection lost", operation="redis_connect", redisAddr=self._where,
                )
        for watcher in self._watchers:
            watcher(up)

    def _key(self, *parts):
        return self.prefix + ":".join(parts)

    def _call(self, method, *args, capped=True):
        """
        Run one command with a timeout; fail at once when Redis is
        unreachable or -- unless it is session bookkeeping, which the number
        of connections bounds already -- too many commands wait.
        """
        if not self.connected:
            return fail(StoreUnavailable(f"Redis at {self._where} is not connected"))
        if capped and self._pending >= self._max_pending:
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
        failure.trap(txredisapi.ConnectionError, defer.TimeoutError, ConnectionError)
        raise StoreUnavailable(failure.getErrorMessage())

    def _script(self, script, keys, args, capped=True):
        return self._call("eval", script, keys, [_text(a) for a in args], capped=capped)

    def _library(self, script, *args, capped=True):
        """Run a script that builds its own keys from the prefix."""
        return self._script(script, [], [self.prefix, *args], capped=capped)

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
        """The members of C{room} whose daemon is alive."""
        return self._library(_ROOM_MEMBERS, room).addCallback(sorted)

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

    # Sessions

    def claim(self, user):
        d = self._library(_CLAIM, user, self.node, capped=False)
        return d.addCallback(lambda reply: Claim(reply[0], reply[1], tuple(sorted(reply[2:]))))

    def release(self, user):
        d = self._library(_RELEASE, user, self.node, capped=False)
        return d.addCallback(lambda peer: peer or None)

    # Matchmaking

    def offer(self, user):
        return self._library(_OFFER, user)

    def withdraw(self, user):
        return self._library(_WITHDRAW, user)

    def pair(self, requester, skipped):
        d = self._library(_PAIR, requester, skipped, self._rng.randrange(1 << 30))
        return d.addCallback(_pairing)

    def hang_up(self, user, peer):
        return self._library(_HANG_UP, user, peer).addCallback(bool)

    def match_of(self, user):
        d = self._call("hmget", self._key("match", user), ["peer", "role"])
        return d.addCallback(lambda reply: Match(*reply) if reply[0] else None)

    def pool_size(self):
        return self._call("scard", self._key("available", "webrtc"))

    # The daemons sharing this Redis (see aleatoria.cluster)

    def heartbeat(self, life):
        """
        Tell the other daemons this one lives, for C{life} more seconds;
        fire with whether it was still alive in their eyes until now.
        """
        d = self._script(_HEARTBEAT, [], [self.prefix, self.node, int(life * 1000)],
                         capped=False)
        return d.addCallback(bool)

    def reap(self):
        """
        End the sessions of other daemons whose heartbeat lapsed. Fire with
        a L{Reaped} for each of their users.
        """
        d = self._library(_REAP, self.node, capped=False)
        return d.addCallback(lambda entries: [
            Reaped(user, peer or None, tuple(rooms)) for user, peer, *rooms in entries
        ])

    def publish_to_owner(self, user, channel_prefix, post):
        """
        Publish C{post} on the channel of the daemon that owns C{user}; fire
        with whether a live daemon owns it.

        @raise StoreUnavailable: that daemon lives but did not hear it.
        """
        d = self._library(_PUBLISH_TO_OWNER, user, self.prefix + channel_prefix, post)
        return d.addCallback(_heard, user)

    def publish_to_all(self, channel, post):
        """
        Publish C{post} on C{channel}, which every daemon hears.

        @raise StoreUnavailable: a live daemon was not listening.
        """
        d = self._library(_PUBLISH_TO_ALL, self.prefix + channel, post)
        return d.addCallback(_heard_by_all)

    def publish(self, channel, post):
        return self._call("publish", self.prefix + channel, post)

    def resync(self, sessions, life):
        """
        Renew this daemon's heartbeat for C{life} seconds and make Redis
        agree with it again, given C{sessions}: each user connected here,
        with its rooms. Fire with the users another daemon has claimed
        meanwhile.
        """
        d = self._library(_RESYNC, self.node, json.dumps(sessions), int(life * 1000),
                          capped=False)
        return d.addCallback(list)

    def leave_cluster(self):
        """This daemon has released its users and stops: forget it."""
        return self._script(_LEAVE_CLUSTER, [], [self.prefix, self.node], capped=False)

    def ping(self):
        return self._call("ping")


@dataclass(frozen=True)
class Reaped:
    """A user of a dead daemon, cleaned up: its partner (if live) and rooms."""

    user: str
    peer: str | None
    rooms: tuple


def _heard(reply, user):
    if int(reply) < 0:
        raise StoreUnavailable(f"the daemon of {user} is not listening")
    return bool(int(reply))


def _heard_by_all(deaf):
    if int(deaf):
        raise StoreUnavailable(f"{deaf} daemon(s) not listening")


def _pairing(reply):
    outcome, peer, role, skipped = reply
    match = Match(peer, role) if peer else None
    return Pairing(match, fresh=outcome == "fresh", skipped=skipped or None)


def _text(value):
    """A script argument as Redis takes it: text."""
    return value.decode() if isinstance(value, bytes) else str(value)
