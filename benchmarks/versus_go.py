"""
Side by side with the Go original (gorilla/websocket, GOMAXPROCS=1), the
floor (benchmarks/peers/twisted_floor.py: what Twisted and CPython cost
with no server logic) and Aleatoria, each server pinned to core 0 and
started fresh for each scenario, the same load generator
(benchmarks/go_loadgen.js, the Go server's protocol) pinned to core 1:

- C{idle}: 5 000 clients, a room each -- connects per second, the
  server's CPU per connect, its RSS growth per connection;
- C{fanout100}, C{fanout1000}: one publisher, a room of 100 or 1 000 --
  deliveries per second, the server's CPU per delivery;
- C{dm}: 300 pairs relaying ICE candidates to each other -- relays per
  second, the server's CPU per relay.

The server's CPU per operation is the per-core figure that holds whether
or not a scenario saturates its core (the generator, on the other core,
may be the bound). Ratios: Aleatoria over Go, higher is better.

usage: python benchmarks/versus_go.py GO_BINARY [--store memory|redis]
       [--repeat N] [--json PATH]      (or: make bench-go GO_ORIG_BIN=...)
The binary: github.com/vanhalt/aleatoria.chat-backend at commit b76b72c,
built with C{go build}; it listens on :8085, which must be free.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import run
from run import (
    cpu_seconds,
    daemon,
    free_port,
    pinned,
    redis_server,
    rss_kib,
    settle,
    wait_listening,
)

LOADGEN = run.HERE / "go_loadgen.js"
ORIGIN = "https://www.aleatoria.chat"
GO_PORT = 8085
SCENARIOS = {
    "idle": ("idle", ["conns=5000", "unique=1", "hold=3"]),
    "fanout100": ("fanout", ["members=100", "seconds=8"]),
    "fanout1000": ("fanout", ["members=1000", "seconds=8"]),
    "dm": ("dm", ["pairs=300", "seconds=8"]),
}


def go(binary):
    def start(port):
        assert port == GO_PORT
        return subprocess.Popen(pinned(0, ["env", "GOMAXPROCS=1", binary]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return start


def floor(port):
    return subprocess.Popen(pinned(0, [sys.executable, str(run.HERE / "peers" / "twisted_floor.py"),
                                       str(port)]), stdout=subprocess.DEVNULL)


def loadgen(scenario, port, options):
    return pinned(1, ["node", str(LOADGEN), scenario, f"ws://127.0.0.1:{port}/ws", ORIGIN,
                      *options])


def idle(port, pid, options):
    """Connects per second and the server's CPU per connect; its RSS growth per connection."""
    before_rss, before_cpu = rss_kib(pid), cpu_seconds(pid)
    generator = subprocess.Popen(loadgen("idle", port, options), stdout=subprocess.PIPE,
                                 text=True)
    result = json.loads(generator.stdout.readline())
    cpu = cpu_seconds(pid) - before_cpu
    time.sleep(1)
    result["rss_per_connection_kib"] = round((rss_kib(pid) - before_rss) / result["conns"], 2)
    result["server_cpu_us_per_op"] = round(cpu / result["conns"] * 1e6, 1)
    generator.communicate(timeout=120)
    return result


def busy(scenario, port, pid, options):
    """A fanout or dm run; the server's CPU per delivery or relay."""
    before = cpu_seconds(pid)
    done = subprocess.run(loadgen(scenario, port, options), capture_output=True, text=True,
                          timeout=300, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    operations = result["delivered"] if scenario == "fanout" else 2 * result["round_trips"]
    result["server_cpu_us_per_op"] = round((cpu_seconds(pid) - before) / operations * 1e6, 2)
    return result


def measure(name, start, port):
    """Each scenario against a fresh server of C{start}."""
    results = {}
    for label, (scenario, options) in SCENARIOS.items():
        server = start(port)
        try:
            wait_listening(port, server)
            settle(server.pid)
            if scenario == "idle":
                results[label] = idle(port, server.pid, options)
            else:
                results[label] = busy(scenario, port, server.pid, options)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"{name} {label}: {json.dumps(results[label])}", file=sys.stderr)
    return results


HEADLINE = {"idle": "connects_per_s", "fanout100": "deliveries_per_s",
            "fanout1000": "deliveries_per_s", "dm": "relays_per_s"}


def ratios(runs):
    """For each scenario: Aleatoria's rate over Go's, Go's CPU per operation over Aleatoria's."""
    found = {}
    for label, figure in HEADLINE.items():
        rows = []
        for one in runs:
            ours, theirs = one["aleatoria"][label], one["go"][label]
            rows.append({"rate": round(ours[figure] / theirs[figure], 2),
                         "cpu_per_op": round(theirs["server_cpu_us_per_op"]
                                             / ours["server_cpu_us_per_op"], 2)})
        found[label] = rows
    found["idle_memory"] = [round(one["go"]["idle"]["rss_per_connection_kib"]
                                  / one["aleatoria"]["idle"]["rss_per_connection_kib"], 2)
                            for one in runs]
    return found


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("go_binary")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    redis = redis_server() if args.store == "redis" else None
    try:
        ours = daemon(args.store, redis_port=redis[0] if redis else None,
                      extra=("--allowed-origin", ORIGIN))
        runs = []
        for _ in range(args.repeat):
            runs.append({"go": measure("go", go(args.go_binary), GO_PORT),
                         "floor": measure("floor", floor, free_port()),
                         "aleatoria": measure("aleatoria", ours, free_port())})
    finally:
        if redis:
            redis[2]()
    report = {"date": time.strftime("%Y-%m-%d"), "store": args.store, "runs": runs,
              "ratios": ratios(runs)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["ratios"]))


if __name__ == "__main__":
    main(sys.argv[1:])
