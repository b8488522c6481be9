"""
`make bench`: measure the daemon (memory store, Redis store) and the Node
`ws` reference relay in the same run, on the same machine.

Each server is pinned to core 0 (with its Redis, for the Redis store), the
load generator (benchmarks/load.js, Node `ws`) to core 1, so figures are per
core -- but for `--workers` 1 against 2 on the Redis store, where the daemon
has both cores (sharing core 1 with the generator) in both runs. Each
scenario reports the generator's CPU share and the server's (over the whole
scenario, pauses included), to show which side was the limit. Results go to
benchmarks/results/<date>[-quick].json, with a PNG chart beside them when
matplotlib is installed (`make bench` installs it).

    .venv/bin/python benchmarks/run.py [--quick | --smoke]
"""

import datetime
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
TWISTD = str(Path(sys.executable).parent / "twistd")
SIZES = {
    "full": dict(idle=10000, members=1000, pairs=500, seekers=100, waiters=100, seconds=5,
                 rate=2000),
    "quick": dict(idle=1000, members=200, pairs=100, seekers=50, waiters=50, seconds=2,
                  rate=2000),
    "smoke": dict(idle=20, members=5, pairs=3, seekers=3, waiters=3, seconds=0.3, rate=100),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core, command):
    """
    C{command} pinned to C{core} (a core, or a list such as C{"0,1"}),
    where the machine has the cores and taskset.
    """
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


def wait_listening(port, process):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server never listened")


def family(pid):
    """C{pid} and its descendants: a daemon with --workers is several processes."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += family(int(child))
    return found


def cpu_seconds(pid):
    """CPU time of C{pid} and its descendants."""
    total = 0
    for member in family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def settle(pid, limit=60):
    """
    Wait until the server is idle (no CPU used for half a second), so one
    scenario's aftermath -- thousands of disconnects -- is not measured as
    part of the next.
    """
    deadline = time.monotonic() + limit
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < 0.02:
            return
        before = now


def rss_kib(pid):
    """Resident memory of C{pid} and its descendants."""
    total = 0
    for member in family(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])
    return total


def generate(scenario, port, options):
    command = pinned(1, ["node", str(HERE / "load.js"), scenario, str(port), json.dumps(options)])
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def idle(port, server_pid, count):
    """Connect C{count} idle clients; the server's RSS per connection."""
    before = rss_kib(server_pid)
    command = pinned(1, ["node", str(HERE / "load.js"), "idle", str(port),
                         json.dumps({"count": count})])
    generator = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
    result = json.loads(generator.stdout.readline())
    time.sleep(1)
    after = rss_kib(server_pid)
    generator.communicate("done\n", timeout=120)
    result["rss_per_connection_kib"] = round((after - before) / count, 2)
    return result


def lobby(port, server_pid, count, fresh):
    """
    C{count} clients into the Lobby and out again (load.js lobby), with the
    server's peak RSS per client while they were there, above its RSS when
    C{fresh} (kilobytes, before any scenario: the heap the idle scenario
    grew is not given back, and would hide what the Lobby costs).
    """
    peak, done = [0], threading.Event()

    def sample():
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_kib(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = generate("lobby", port, {"count": count})
    finally:
        done.set()
        sampler.join()
    result["peak_rss_per_connection_kib"] = round((peak[0] - fresh) / count, 2)
    return result


def measure(name, start, size, matchmaking, only=None, redis=None):
    """
    Run the scenarios (C{only} those named, if given) against the server
    C{start} starts; with C{redis} (its pid), Redis's CPU share as well.
    """
    port = free_port()
    server = start(port)
    try:
        wait_listening(port, server)
        settle(server.pid)
        fresh = rss_kib(server.pid)

        def wanted(scenario):
            return only is None or scenario in only

        results = {}
        if wanted("idle"):
            results["idle"] = idle(port, server.pid, size["idle"])
        if wanted("lobby"):
            settle(server.pid)
            results["lobby"] = lobby(port, server.pid, size["idle"], fresh)
        if wanted("storm"):
            settle(server.pid)
            results["storm"] = generate("storm", port, {"count": size["idle"]})
        seconds = size["seconds"]
        scenarios = [
            ("fanout", {"members": size["members"], "seconds": seconds}),
            ("relay", {"pairs": size["pairs"], "seconds": seconds}),
            ("relay_rate", {"idle": size["idle"], "pairs": size["pairs"], "rate": size["rate"],
                            "seconds": seconds}),
        ]
        if matchmaking:
            scenarios.append(("matchmaking", {"seekers": size["seekers"],
                                              "waiters": size["waiters"], "seconds": seconds}))
            for scenario in ("pool", "pool_interests"):
                scenarios.append((scenario, {"pool": size["idle"], "seekers": size["seekers"],
                                             "seconds": seconds}))
        for scenario, options in scenarios:
            if not wanted(scenario):
                continue
            settle(server.pid)
            cpu, started = cpu_seconds(server.pid), time.monotonic()
            redis_cpu = cpu_seconds(redis) if redis else 0
            results[scenario] = generate(scenario, port, options)
            elapsed = time.monotonic() - started
            results[scenario]["server_cpu"] = round((cpu_seconds(server.pid) - cpu) / elapsed, 3)
            if redis:
                results[scenario]["redis_cpu"] = round(
                    (cpu_seconds(redis) - redis_cpu) / elapsed, 3)
        print(f"{name}: {json.dumps(results)}", file=sys.stderr)
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def daemon(store, redis_port=None, workers=1, cores="0", extra=()):
    def start(port):
        command = [TWISTD, "--nodaemon", "--pidfile=", "aleatoria", "--port",
                   f"tcp:{port}:interface=127.0.0.1", "--allow-no-origin",
                   "--rate-limit", "1000000", "--rate-burst", "1000000",
                   "--address-rate", "100000000", "--address-burst", "100000000",
                   "--connect-rate", "1000000", "--connect-burst", "1000000",
                   "--stored-per-hour", "100000000", "--conversations-per-hour", "1000000",
                   "--address-stored-per-hour", "100000000",
                   "--address-conversations-per-hour", "1000000",
                   "--stored-bytes-per-hour", "1000000000000",
                   "--address-stored-bytes-per-hour", "1000000000000",
                   "--max-rooms-per-address", "1000000",
                   "--max-connections-per-ip", "1000000", "--store", store,
                   "--skips-per-minute", "0", "--rematch-after", "0",
                   "--workers", str(workers), *extra]
        if redis_port:
            command += ["--redis-host", "127.0.0.1", "--redis-port", str(redis_port)]
        return subprocess.Popen(pinned(cores, command), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    return start


def reference(port):
    return subprocess.Popen(pinned(0, ["node", str(HERE / "peers" / "ws-reference.js"),
                                       str(port)]), stdout=subprocess.DEVNULL)


def redis_server():
    directory = tempfile.mkdtemp()
    port = free_port()
    process = subprocess.Popen(pinned(0, ["redis-server", "--port", str(port), "--bind",
                                          "127.0.0.1", "--save", "", "--appendonly", "no",
                                          "--dir", directory]), stdout=subprocess.DEVNULL)
    wait_listening(port, process)
    return port, process.pid, lambda: (process.terminate(), process.wait())


WORKER_SCENARIOS = ("idle", "fanout", "relay", "matchmaking")
"""What --workers 1 and 2 are compared on: connects, fan-out, relays, pairings."""

RATIOS = {"fanout": ["deliveries_per_s", "p50_ms", "p99_ms"],
          "relay": ["relays_per_s", "p50_ms", "p99_ms"],
          "relay_rate": ["p50_ms", "p99_ms"],
          "idle": ["rss_per_connection_kib", "connects_per_s"],
          "lobby": ["connects_per_s", "seconds_to_answer_after_leaving",
                    "peak_rss_per_connection_kib"],
          "storm": ["seconds_to_reconnect_all", "connects_per_s"]}


def primary_ceiling():
    """
    Redis's time per room message, direct message and call cycle, with two
    daemons in front of it, and from it the ceiling of one primary
    (benchmarks/redis_round_trips.py).
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, str(HERE / "redis_round_trips.py"), "--json", out.name],
                       check=True, capture_output=True)
        return json.loads(Path(out.name).read_text())


def ratios(results):
    """Each daemon figure divided by the reference's."""
    reference = results["reference"]
    out = {}
    for target, scenarios in results.items():
        if target == "reference":
            continue
        out[target] = {
            f"{scenario}.{metric}": round(
                scenarios[scenario][metric] / reference[scenario][metric], 3)
            for scenario, metrics in RATIOS.items() for metric in metrics
            if scenario in scenarios and reference[scenario].get(metric)
        }
    return out


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(report["targets"])
    throughput = [("fanout", "deliveries_per_s", "room deliveries/s"),
                  ("relay", "relays_per_s", "DM relays/s")]
    latency = [("fanout", "p99_ms", "room p99 ms @200 msg/s"),
               ("relay_rate", "p99_ms", "DM p99 ms @2000 msg/s")]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, rows, title in ((axes[0], throughput, "Throughput per core (higher is better)"),
                              (axes[1], latency, "p99 latency (lower is better)")):
        width = 0.8 / len(targets)
        for index, target in enumerate(targets):
            values = [report["targets"][target].get(s, {}).get(m) or 0 for s, m, _ in rows]
            axis.bar([x + index * width for x in range(len(rows))], values, width, label=target)
        axis.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(rows))])
        axis.set_xticklabels([label for _, _, label in rows])
        axis.set_title(title)
        axis.legend()
    figure.suptitle(f"Aleatoria vs Node ws reference -- {report['date']} ({report['mode']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv):
    mode = "quick" if "--quick" in argv else "smoke" if "--smoke" in argv else "full"
    size = SIZES[mode]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"daemon-memory": measure("daemon-memory", daemon("memory"), size, True)}
    primary = None
    if shutil.which("redis-server"):
        redis_port, redis_pid, stop_redis = redis_server()
        try:
            if mode != "smoke":
                results["daemon-redis"] = measure(
                    "daemon-redis", daemon("redis", redis_port), size, True, redis=redis_pid)
            if mode != "smoke":
                primary = primary_ceiling()
            # workers 1 vs 2, each given both cores (the generator shares core 1)
            for workers in (1, 2) if mode != "smoke" else (2,):
                name = f"daemon-redis-{workers}w"
                results[name] = measure(
                    name, daemon("redis", redis_port, workers=workers, cores="0,1"), size, True,
                    only=WORKER_SCENARIOS, redis=redis_pid)
        finally:
            stop_redis()
    results["reference"] = measure("reference", reference, size, False)
    today = datetime.date.today().isoformat()
    report = {
        "date": today, "mode": mode, "sizes": size,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "node": subprocess.run(["node", "--version"], capture_output=True,
                                           text=True).stdout.strip(),
                    "pinned": bool(shutil.which("taskset")) and (os.cpu_count() or 1) > 1},
        "targets": results, "ratios": ratios(results), "redis_primary": primary,
    }
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else (
        HERE / "results" / f"{today}{'' if mode == 'full' else '-' + mode}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    try:
        chart(report, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
