"""
What one C{resume} costs Redis, across 50 rooms full of history: the
time of the commands it runs (C{INFO commandstats}: the usec of EVALSHA,
and of any plain command the daemon sends), and the bytes Redis
sends (C{INFO stats}, total_net_output_bytes) -- for a resume of another
epoch (answered C{recovered: false}; from offset 1, as an attacker
would ask), and for exact ones that replay 10
messages, or every kept message, of each room.

    .venv/bin/python benchmarks/resume_cost.py [--history 1000] [--rounds 10]

Starts its own redis-server on a free loopback port, and one daemon.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor

sys.path.insert(0, str(Path(__file__).parent.parent))

from aleatoria.daemon.service import make_service
from aleatoria.domain.events import RoomMessage
from aleatoria.domain.values import Place
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.servers import Server, redis_config  # noqa: E402

ROOMS = 50


def info(redis, section):
    return subprocess.run(["redis-cli", "-p", str(redis.port), "INFO", section],
                          capture_output=True, text=True, check=True).stdout


def commands(redis):
    """
    Since the last reset: EVALSHA calls, and the microseconds of every
    command the daemon sent (scripts and plain commands; not INFO).
    """
    found = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(
        r"cmdstat_([\w|]+):calls=(\d+),usec=(\d+)", info(redis, "commandstats"))}
    spent = {name: usec for name, (_, usec) in found.items()
             if name not in ("info", "config|resetstat")}
    return found.get("evalsha", (0, 0))[0], spent


def sent(redis):
    return int(re.search(r"total_net_output_bytes:(\d+)", info(redis, "stats"))[1])


def reset(redis):
    subprocess.run(["redis-cli", "-p", str(redis.port), "CONFIG", "RESETSTAT"],
                   capture_output=True, check=True)


async def fill(backend, history):
    """Each room full: C{history} messages of about 200 bytes; where each stream stands."""
    ends = {}
    at = 1_700_000_000_000_000_000
    for n in range(ROOMS):
        room = f"room{n}"
        for start in range(0, history, 100):
            pending = []
            for i in range(start, min(start + 100, history)):
                at += 1000
                pending.append(backend.streams.post_room(RoomMessage(
                    room, "alice", f"message {i} " + "x" * 100, f"{n}-{i}",
                    f"2026-12-01T00:00:00.{i:09d}Z"), at))
            await defer.gatherResults(pending)
        since = await backend.streams.room_since(room, 2**53, "")
        ends[room] = Place(since.last, since.epoch)
    return ends


async def measure(redis, history, rounds):
    service = make_service(redis_config(redis.port, **{
        "history-size": str(history), "max-rooms": str(ROOMS),
        "outbound-messages": "1000000", "outbound-bytes": str(1 << 30)}), reactor)
    service.startService()
    server = Server(service)
    await server.settled()
    ends = await fill(server.backend, history)
    bob = await server.connect("bob", room="room0")

    async def resume(positions, expect_messages):
        bob.send({"type": "resume", "payload": {"rooms": positions}})
        got = 0
        while True:
            message = await bob.next()
            if message["type"] == "resumed":
                break
            got += message["type"] == "chat_message"
        assert got == expect_messages, (got, expect_messages)
        return message

    cases = {
        "wrong_epoch": ({room: {"offset": 1, "epoch": "another"}
                         for room, end in ends.items()}, 0),
        "exact_10": ({room: {"offset": end.offset - 10, "epoch": end.epoch}
                      for room, end in ends.items()}, 10 * ROOMS),
        "exact_all": ({room: {"offset": end.offset - history + 1, "epoch": end.epoch}
                       for room, end in ends.items()}, (history - 1) * ROOMS),
    }
    results = {}
    for name, (positions, expect_messages) in cases.items():
        await resume(positions, expect_messages)  # joined, and the scripts warm
        reset(redis)
        before = sent(redis)
        for _ in range(rounds):
            answer = await resume(positions, expect_messages)
        calls, usec = commands(redis)
        results[name] = {
            "recovered": answer["payload"]["rooms"]["room1"]["recovered"],
            "script_calls_per_resume": calls / rounds,
            "redis_usec_per_resume": round(sum(usec.values()) / rounds),
            "of_which_plain_zrangebyscore": round(usec.get("zrangebyscore", 0) / rounds),
            "redis_bytes_out_per_resume": round((sent(redis) - before) / rounds),
        }
    await bob.close()
    await service.stopService()
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(Path(directory)).start()
        try:
            results = {}

            async def run():
                results.update(await measure(redis, options.history, options.rounds))

            d = defer.ensureDeferred(run())
            d.addBoth(lambda result: reactor.stop() or result)
            reactor.run()
            if not results:
                d.addErrback(lambda failure: failure.printTraceback())
                sys.exit(1)
        finally:
            redis.stop()
    print(f"{ROOMS} rooms of {options.history} messages, {options.rounds} resumes each:")
    for name, figures in results.items():
        print(f"  {name:12} " + "  ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
