"""
The Lua scripts of the Redis backend, package data under C{lua/}: every
step that touches more than one key runs as one script, atomic, in one
round trip. They are loaded once, when a connection opens (SCRIPT LOAD),
and run by hash.

Each script takes the key prefix as ARGV[1] and builds its keys with the
C{K} table its preamble defines (L{aleatoria.redis.keys.lua_keys}): the
same names as the daemon's, for only the keys the script uses. A script
whose first line says C{-- uses: library streams} has those shared files
before it. The scripts touch keys that depend on what they read (a
user's rooms, a match's peer), which a Redis Cluster would refuse:
Aleatoria needs one Redis or Valkey primary (replicas and failover are
fine).
"""

from __future__ import annotations

import re
from importlib import resources

from aleatoria.redis.keys import lua_keys

_ID = "local function id(user) return (string.gsub(user, ':', '%%3A')) end\n"
_USES = re.compile(r"-- uses:([\w ]+)\n")
_KEY = re.compile(r"\bK\.(\w+)\(")


def _read(name: str) -> str:
    return (resources.files("aleatoria.redis") / "lua" / f"{name}.lua").read_text()


def _source(name: str) -> str:
    """The whole text of a script: prefix, id escaping, its keys, what it uses, itself."""
    body = _read(name)
    uses = _USES.match(body)
    parts = [_read(shared) for shared in uses[1].split()] if uses else []
    body = "\n".join([*parts, body])
    return f"local P = ARGV[1]\n{_ID}{lua_keys(set(_KEY.findall(body)))}\n{body}"


NAMES = ("save_room", "save_direct", "evict", "room_since", "inbox_since", "conversations",
         "ban", "unban", "bans",
         "mark_read", "direct_messages", "join", "leave", "claim", "release", "offer",
         "withdraw", "pair", "hang_up", "room_members", "rooms_page", "whereabouts",
         "daemons", "heartbeat", "reap", "publish_to_owner", "publish_to_all", "resync",
         "leave_daemons", "grace_left", "lapse", "block", "blocks_between",
         "report_quota", "file_report", "reports_page", "delete_report")

SCRIPTS = {name: _source(name) for name in NAMES}
"""Each script's whole text, by name."""
