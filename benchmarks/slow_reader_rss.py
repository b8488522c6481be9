"""
Memory under a reader that never reads: the daemon's RSS while 1000
messages a second flow into the room of a client that stopped reading.

    .venv/bin/python benchmarks/slow_reader_rss.py [seconds] [--unbounded]

Starts its own daemon (twistd, memory store) on a free loopback port.
"""

import re
import subprocess
import sys
from pathlib import Path

from twisted.internet import defer, reactor, task

sys.path.insert(0, str(Path(__file__).parent.parent))

from tests.support.wsclient import connect  # noqa: E402

TWISTD = str(Path(sys.executable).parent / "twistd")
RATE = 1000
BODY = "x" * 1000


def rss_mib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024


async def measure(daemon, port, seconds):
    readings = {"before": rss_mib(daemon.pid)}
    stalled = await connect(port, "stalled", "flood", origin=None)
    sender = await connect(port, "sender", "flood", origin=None)
    stalled._protocol.transport.pauseProducing()
    sent = 0
    for second in range(seconds):
        for _ in range(RATE // 100):
            for _ in range(100):
                sender.send({"type": "chat_message", "room": "flood",
                             "payload": {"content": BODY}})
                sent += 1
            await task.deferLater(reactor, 0.01, lambda: None)
            sender.inbox.clear()
        readings[f"after {second + 1} s"] = rss_mib(daemon.pid)
    readings["sent"] = sent
    await sender.close()
    return readings


def main():
    """Arguments: [seconds] [--unbounded] (no outbound limit, for comparison)."""
    seconds = int(next((a for a in sys.argv[1:] if a.isdigit()), 10))
    unbounded = ["--outbound-messages", "100000000", "--outbound-bytes", "100000000000"]
    daemon = subprocess.Popen(
        [TWISTD, "--nodaemon", "--pidfile=", "aleatoria", "--port",
         "tcp:0:interface=127.0.0.1", "--allow-no-origin", "--rate-limit", "100000",
         "--address-rate", "100000000", "--address-burst", "100000000",
         "--connect-rate", "1000000", "--connect-burst", "1000000",
         "--rate-burst", "100000", "--stored-per-hour", "100000000",
         "--address-stored-per-hour", "100000000",
         "--stored-bytes-per-hour", "1000000000000",
         "--address-stored-bytes-per-hour", "1000000000000",
         *(unbounded if "--unbounded" in sys.argv else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in daemon.stdout:
            found = re.search(r"Listening on \S*:(\d+)", line)
            if found:
                break
        results = {}
        d = defer.ensureDeferred(measure(daemon, int(found[1]), seconds))
        d.addCallback(results.update)
        d.addErrback(lambda f: f.printTraceback())
        d.addBoth(lambda _: reactor.stop())
        reactor.run()
    finally:
        daemon.terminate()
        log = daemon.communicate()[0]
    dropped = re.search(r"Dropping stalled .*", log)
    results["stalled reader"] = dropped[0] if dropped else "never dropped"
    for key, value in results.items():
        print(f"{key}: {value:.1f} MiB" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
