"""
Real redis-server processes for the tests, on free loopback ports: never
the machine's own Redis, never port 6379.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server; C{stop()} and C{start()} again to simulate an outage."""

    def __init__(self, directory: Path, *extra: str, port=None, login=None):
        self.directory = directory
        self.extra = list(extra)
        self.port = port or free_port()
        self.login = login
        """(user, password) for L{raw}, where the default user is off."""
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self._ready_port()), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def _ready_port(self):
        if "--tls-port" in self.extra:
            return int(self.extra[self.extra.index("--tls-port") + 1])
        return self.port

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self):
        """SIGSTOP: Redis hangs, its connections open and silent."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self):
        """SIGKILL: Redis dies without a word (start() brings it back)."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    async def becomes(self, expected, *args):
        """
        Wait (at most 10 s) until C{raw(*args)} answers C{expected}, asking
        in a thread: redis-cli must not block the reactor the daemons under
        test share.
        """
        from twisted.internet import reactor
        from twisted.internet.task import deferLater
        from twisted.internet.threads import deferToThread

        for _ in range(200):
            if await deferToThread(self.raw, *args) == expected:
                return
            await deferLater(reactor, 0.05, lambda: None)
        raise AssertionError(f"{args} never answered {expected!r}")

    def raw(self, *args):
        """Run redis-cli with raw output (values exactly as stored), stripped."""
        login = []
        if self.login:
            login = ["--user", self.login[0], "--pass", self.login[1], "--no-auth-warning"]
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *login, "--raw", *args],
            capture_output=True, text=True, check=True, timeout=10,
        )
        return result.stdout.strip()


def acl_redis(directory):
    """A Redis whose only user is C{chat} (password C{right-password}), allowed everything."""
    return RedisServer(directory, "--user", "default", "off",
                       "--user", "chat", "on", ">right-password", "~*", "&*", "+@all",
                       login=("chat", "right-password")).start()
