"""
Redis Sentinel for the tests, the real thing on free loopback ports: a
primary, a replica, and three sentinels (quorum 2) that watch them with
short timeouts -- a SIGKILLed primary is replaced in about 2 s.

Every redis-server build has the sentinel mode (C{--sentinel}); Debian's
C{redis-sentinel} package (which C{make test} installs should this one lack
it) adds a C{redis-sentinel} command.
"""

import shutil
import subprocess
import time

from .redis_server import REDIS_SERVER, RedisServer, free_port

SENTINEL = ([shutil.which("redis-sentinel")] if shutil.which("redis-sentinel")
            else [REDIS_SERVER, "--sentinel"])
"""The command that starts a sentinel, before and after its config file."""

MASTER = "mymaster"


class SentinelProcess:
    """One sentinel, with a config file of its own (sentinels rewrite theirs)."""

    def __init__(self, directory, primary_port, password=None):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.password = password
        lines = [
            f"port {self.port}", "bind 127.0.0.1", f"dir {directory}",
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {MASTER} 1000",
            f"sentinel failover-timeout {MASTER} 5000",
        ]
        if password:
            lines += [f"requirepass {password}", f"sentinel sentinel-pass {password}"]
        self.config = directory / "sentinel.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [SENTINEL[0], str(self.config), *SENTINEL[1:]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait(lambda: self.ask("PING") == "PONG", "a sentinel did not start", 30)
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def ask(self, *args):
        """redis-cli against this sentinel, raw output; '' when it does not answer."""
        login = ["--pass", self.password, "--no-auth-warning"] if self.password else []
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *login, "--raw", *args],
            capture_output=True, text=True, timeout=10,
        )
        return result.stdout.strip()

    def state(self):
        """C{SENTINEL MASTER mymaster} as a dict."""
        fields = self.ask("SENTINEL", "MASTER", MASTER).splitlines()
        return dict(zip(fields[::2], fields[1::2], strict=False))


class SentinelSetup:
    """
    A primary, its replica and three sentinels. After a failover the
    replica is the primary: L{primary} and L{replica} follow the roles.
    """

    def __init__(self, directory, password=None):
        self.directory = directory
        first = RedisServer(_dir(directory / "a"))
        second = RedisServer(_dir(directory / "b"), "--replicaof", "127.0.0.1", str(first.port))
        self.servers = {first.port: first, second.port: second}
        self.sentinels = [SentinelProcess(directory / f"sentinel{i}", first.port, password)
                          for i in range(3)]
        self._primary_port = first.port

    @property
    def primary(self):
        return self.servers[self._primary_port]

    @property
    def replica(self):
        return next(s for p, s in self.servers.items() if p != self._primary_port)

    @property
    def addresses(self):
        """The sentinels as C{--redis-sentinel} takes them, comma-separated."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self):
        self.primary.start()
        self.replica.start()
        _wait(lambda: "master_link_status:up" in self.replica.raw("INFO", "replication"),
              "the replica did not sync", 30)
        for sentinel in self.sentinels:
            sentinel.start()
        self.settled()
        return self

    def settled(self):
        """Wait until every running sentinel knows the replica and the other sentinels."""
        running = [s for s in self.sentinels if s.process is not None]

        def known():
            states = [s.state() for s in running]
            return all(st.get("num-slaves") == "1" and st.get("flags") == "master"
                       and st.get("num-other-sentinels") == str(len(running) - 1)
                       for st in states)

        _wait(known, "the sentinels never got to know each other and the replica", 60)

    def named(self):
        """The port every running sentinel names as the primary's, or C{None} if they differ."""
        ports = {tuple(s.ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER).splitlines())
                 for s in self.sentinels if s.process is not None}
        return int(ports.pop()[1]) if len(ports) == 1 else None

    def await_new_primary(self, timeout=30):
        """
        Block until the sentinels name the replica as the primary and it says
        so itself; then roles swap here. Run it in a thread under a reactor.
        """
        old = self._primary_port
        new = self.replica.port
        _wait(lambda: self.named() == new
              and "role:master" in self.servers[new].raw("INFO", "replication"),
              "the sentinels never named a new primary", timeout)
        self._primary_port = new
        return old, new

    def kill_primary(self):
        """SIGKILL the primary: it dies without a word (the sentinels then fail over)."""
        self.primary.kill()

    def failover(self):
        """A manual C{SENTINEL FAILOVER}, as an operator runs it."""
        return self.sentinels[0].ask("SENTINEL", "FAILOVER", MASTER)

    def stop(self):
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers.values():
            server.stop()


def _dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait(condition, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (subprocess.SubprocessError, OSError, IndexError):
            pass
        time.sleep(0.05)
    raise RuntimeError(what)
