"""
Every Redis key and channel name, in one place (docs/reference/keys.rst):
Python reads them through L{Keys}, and each Lua script through
the C{K} table its preamble defines from this same table (L{lua_keys}).

A name's C{{}} is a room name or a user id as it is; C{{id}} is a user id
with each C{:} written C{%3A} (ids may hold C{:}, the separator, but never
C{%}, so no two users share such a key). The Go server's keys keep its
own names; the rest are ours, beside them.
"""

from collections.abc import Iterable

NAMES = {
    # the Go server's
    "room_members": "room:members:{}",
    "user_rooms": "user:rooms:{}",
    "room_messages": "room:messages:{}",
    "dm": "dm:{id}:{id}",
    "pool": "available:webrtc",
    # ours: matchmaking and sessions
    "waiting": "available:waiting",
    "match": "match:{}",
    "skips": "skips:{id}",
    "met": "met:{id}:{id}",
    "seat": "available:seat:{id}",
    "segment_pool": "available:segment:{}",
    "interest_pool": "available:interest:{}:{}",
    "held": "matches:held",
    # ours: safety
    "blocks": "blocks:{id}",
    "address": "address:{id}",
    "meeting": "meeting:{id}",
    "report": "report:{}",
    "reports": "reports",
    "reports_filed": "reports:filed:{id}",
    "presence": "presence:{}",
    "budget": "budget:{}",
    "rooms": "rooms",
    "room_live": "room:live:{}",
    "node": "node:{}",
    "node_users": "node:{}:users",
    "node_stats": "node:{}:stats",
    "nodes": "nodes",
    # ours: bans
    "ban": "ban:{}",
    "bans": "bans",
    # ours: streams
    "room_offset": "room:offset:{}",
    "room_epoch": "room:epoch:{}",
    "room_times": "room:times:{}",
    "inbox": "inbox:{id}",
    "inbox_offset": "inbox:offset:{id}",
    "inbox_epoch": "inbox:epoch:{id}",
    "inbox_latest": "inbox:latest:{id}",
    "inbox_conversations": "inbox:conversations:{id}",
    "inbox_unread": "inbox:unread:{id}",
    "inbox_incoming": "inbox:incoming:{id}:{id}",
    "streams": "streams",
    "streams_weight": "streams:weight",
    # the channels daemons hear
    "node_channel": "aleatoria:node:{}",
    "rooms_channel": "aleatoria:rooms",
}


def escape(user: str) -> str:
    """A user id as the keys that end with it write it."""
    return user.replace(":", "%3A")


class Keys:
    """The keys and channels under one prefix (C{--redis-prefix})."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, name: str, *parts: str) -> str:
        return self.prefix + _join(NAMES[name], parts)

    def dm(self, user_a: str, user_b: str) -> str:
        """The Go server's key of a pair's history, the two ids in order."""
        return self("dm", *sorted((user_a, user_b)))


def _join(pattern: str, parts: Iterable[str]) -> str:
    """C{pattern} with its holes filled by C{parts}, ids escaped."""
    out: list[str] = []
    values, rest = iter(parts), pattern
    while True:
        at = rest.find("{")
        if at < 0:
            return "".join(out) + rest
        out.append(rest[:at])
        hole = rest[at:rest.index("}", at) + 1]
        value = next(values)
        out.append(escape(value) if hole == "{id}" else value)
        rest = rest[at + len(hole):]


def lua_keys(used: Iterable[str]) -> str:
    """
    The Lua that defines C{K.<name>}, for each name in C{used}, as a
    function of its parts (C{P} is the prefix, C{id} the escaping).
    """
    lines = ["local K = {}"]
    for name in sorted(used):
        pattern = NAMES[name]
        args: list[str] = []
        body, rest, n = ["P"], pattern, 0
        while True:
            at = rest.find("{")
            if at < 0:
                if rest:
                    body.append(repr(rest))
                break
            if rest[:at]:
                body.append(repr(rest[:at]))
            hole = rest[at:rest.index("}", at) + 1]
            n += 1
            args.append(f"a{n}")
            body.append(f"id(a{n})" if hole == "{id}" else f"a{n}")
            rest = rest[at + len(hole):]
        lines.append(f"K.{name} = function({', '.join(args)}) return {' .. '.join(body)} end")
    return "\n".join(lines)
