"""
Count what each kind of client message costs in Redis, with two daemons
sharing one Redis: round trips (requests the daemons send, each script one)
and the commands Redis executes for them (INFO commandstats, which counts
the commands inside scripts too).

    .venv/bin/python benchmarks/redis_round_trips.py [--json PATH]

Starts its own redis-server on a free loopback port. The time Redis spends
in each operation's scripts says how many of them one primary carries a
second before its one core is busy: the ceiling of one primary, whatever
the number of daemons in front of it (``make bench`` records it).
"""

import asyncio
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor

sys.path.insert(0, str(Path(__file__).parent.parent))

from aleatoria.daemon.service import make_service
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.servers import Server, redis_config  # noqa: E402

N = 200


def _count_requests(backend, trips):
    """Count every request the backend sends (all go through its commands' call)."""
    call = backend.commands.call

    def counted(*args, **kwargs):
        trips[0] += 1
        return call(*args, **kwargs)

    backend.commands.call = counted


def commandstats(redis):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "INFO", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)", out)
            if m[1] != "config|resetstat"}


def script_usec(redis):
    """Microseconds Redis spent in scripts (EVALSHA), in all, since the last reset."""
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "INFO", "commandstats"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"cmdstat_evalsha:calls=\d+,usec=(\d+)", out)
    return int(found[1]) if found else 0


def reset(redis):
    subprocess.run(["redis-cli", "-p", str(redis.port), "CONFIG", "RESETSTAT"],
                   capture_output=True, check=True)


async def measure(redis):
    servers = []
    for _ in range(2):
        service = make_service(redis_config(redis.port), reactor)
        service.startService()
        servers.append(Server(service))
    one, two = servers
    trips = [0]
    for server in servers:
        await server.settled()
        _count_requests(server.backend, trips)
    alice = await one.connect("alice", room="r")
    bob = await one.connect("bob", room="r")
    carol = await two.connect("carol", room="r")
    await alice.expect("user_joined")

    results = {}

    async def run(name, action, settle):
        reset(redis)
        trips[0] = 0
        for _ in range(N):
            await defer.maybeDeferred(lambda: defer.ensureDeferred(action())
                                      if asyncio.iscoroutinefunction(action) else action())
            await settle()
        stats = commandstats(redis)
        stats.pop("config", None)
        stats.pop("info", None)
        results[name] = (trips[0] / N,
                         {cmd: calls / N for cmd, calls in sorted(stats.items()) if calls},
                         script_usec(redis) / N)

    def room_message():
        alice.send({"type": "chat_message", "room": "r", "payload": {"content": "x"}})

    async def room_settle():
        await alice.expect("chat_message", skip={"user_joined"})
        await carol.expect("chat_message", skip={"user_joined"})
        await bob.expect("chat_message", skip={"user_joined"})

    def dm_local():
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "x"}})

    async def dm_local_settle():
        await alice.expect("chat_message", skip={"user_joined"})
        await bob.expect("chat_message", skip={"user_joined"})

    def dm_remote():
        alice.send({"type": "chat_message", "toUser": "carol", "payload": {"content": "x"}})

    async def dm_remote_settle():
        await alice.expect("chat_message", skip={"user_joined"})
        await carol.expect("chat_message", skip={"user_joined"})

    await run("room message (3 members, 2 daemons)", room_message, room_settle)
    await run("direct message, same daemon", dm_local, dm_local_settle)
    await run("direct message, other daemon", dm_remote, dm_remote_settle)

    async def pairing_settle():
        await alice.expect("assign_role", skip={"user_joined"})
        await carol.expect("assign_role", skip={"user_joined"})
        alice.send({"type": "hangup", "toUser": "carol"})
        await carol.expect("hangup", skip={"user_joined"})

    async def pairing():
        carol.send({"type": "user_available_webrtc"})
        # a read from Redis on carol's daemon: its reply comes after the offer ran
        await carol.request({"type": "get_direct_messages", "payload": {"withUser": "x"}},
                            "direct_messages", skip={"user_joined"})
        alice.send({"type": "request_random_peer"})

    await run("available + request + hangup (peer on other daemon)", pairing, pairing_settle)

    for client in (alice, bob, carol):
        await client.close()
    for server in servers:
        await server.service.stopService()
    return results


def main(argv):
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(Path(directory)).start()
        try:
            results = {}
            d = defer.ensureDeferred(measure(redis))
            d.addCallback(results.update)
            d.addErrback(lambda f: f.printTraceback(file=sys.stderr))
            d.addBoth(lambda _: reactor.stop())
            reactor.run()
        finally:
            redis.stop()
    print(f"Per message, averaged over {N} (heartbeats included):")
    for name, (trips, stats, usec) in results.items():
        total = sum(stats.values())
        detail = ", ".join(f"{cmd} {calls:g}" for cmd, calls in stats.items())
        print(f"- {name}: {trips:g} round trips; Redis runs {total:g} commands ({detail}); "
              f"{usec:.1f} µs in scripts, one primary's ceiling {ceiling(usec):,} a second")
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps({
            name: {"round_trips": trips, "commands": sum(stats.values()),
                   "script_usec": round(usec, 1), "primary_ceiling_per_s": ceiling(usec)}
            for name, (trips, stats, usec) in results.items()}, indent=2) + "\n")


def ceiling(usec):
    """Operations a second that keep one Redis core busy in their scripts alone."""
    return int(1e6 / usec) if usec else 0


if __name__ == "__main__":
    main(sys.argv[1:])
