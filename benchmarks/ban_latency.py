"""
How fast a ban reaches another daemon, and what checking bans costs a
handshake: two daemons on one Redis (in this process, as the tests run
them); a user connected to the second is banned through the first's
server API, and the time from the request to the client's close is
measured, C{--rounds} times. Then the local check a handshake makes,
timed with no bans, and with 10 000 user bans and 1 000 range bans of
every IPv4 prefix length from /8 to /32 in force.

    .venv/bin/python benchmarks/ban_latency.py [--rounds 50]

Starts its own redis-server on a free loopback port.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, reactor

sys.path.insert(0, str(Path(__file__).parent.parent))

from aleatoria.domain.bans import network_of  # noqa: E402
from aleatoria.domain.events import Ban  # noqa: E402
from tests.support.api import api_redis_daemon, call  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.servers import redis_daemon, stop_server  # noqa: E402


async def kicks(redis, rounds):
    """Milliseconds from each ban request to the close on the other daemon."""
    one = await api_redis_daemon(redis.port)
    two = await redis_daemon(redis.port)
    try:
        times = []
        for n in range(rounds):
            client = await two.connect(f"user{n}")
            started = time.perf_counter()
            await call(one, "POST", "/api/v1/bans", {"userId": f"user{n}", "seconds": 60})
            assert await client.closed() == (4003, "banned")
            times.append((time.perf_counter() - started) * 1000)
        return times, two.hub.bans
    finally:
        await stop_server(one)
        await stop_server(two)


def checks(bans, count=100_000):
    """Microseconds per handshake check of an unbanned user from an unbanned address."""
    started = time.perf_counter()
    for _ in range(count):
        bans.holding("nobody", "198.51.100.77")
    return (time.perf_counter() - started) / count * 1e6


async def main(rounds):
    with tempfile.TemporaryDirectory() as where:
        redis = RedisServer(Path(where)).start()
        try:
            times, bans = await kicks(redis, rounds)
        finally:
            redis.stop()
    print(f"ban to close on the other daemon, {rounds} rounds: median "
          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms")
    bans.index = type(bans.index)()
    print(f"handshake check, no bans: {checks(bans):.2f} us")
    now = time.time()
    for n in range(10_000):
        bans.index.add(Ban(f"u{n}", now, now + 3600, user=f"user{n}"))
    for n in range(1000):
        network = network_of(f"10.{n % 250}.{n % 200}.{n % 7}/{8 + n % 25}")
        bans.index.add(Ban(f"n{n}", now, now + 3600, network=str(network)))
    print(f"handshake check, {len(bans.index)} bans over "
          f"{len(bans.index.by_network)} prefix lengths: {checks(bans):.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    options = parser.parse_args()
    failures = []
    d = defer.ensureDeferred(main(options.rounds))
    d.addErrback(lambda failure: failures.append(failure.getTraceback()))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    sys.exit("".join(failures) or None)
