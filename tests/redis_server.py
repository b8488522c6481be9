"""
Real redis-server processes for the tests, on free loopback ports: never
the machine's own Redis, never port 6379.
"""

import shutil
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

    def __init__(self, directory: Path, *extra: str, port=None):
        self.directory = directory
        self.extra = list(extra)
        self.port = port or free_port()
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

    def raw(self, *args):
        """Run redis-cli with raw output (values exactly as stored), stripped."""
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--raw", *args],
            capture_output=True, text=True, check=True, timeout=10,
        )
        return result.stdout.strip()
