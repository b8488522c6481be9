"""
A real coturn (Debian's C{turnserver}) for the tests, on a free loopback
port, checking TURN REST API credentials (C{use-auth-secret}) against
its C{static-auth-secret}; and C{turnutils_uclient} to allocate relays on it.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .redis_server import free_port

TURNSERVER = shutil.which("turnserver")
UCLIENT = shutil.which("turnutils_uclient")


class TurnServer:
    """One turnserver; its log in C{directory}/turn.log."""

    def __init__(self, directory: Path, secret, realm="test"):
        self.directory = directory
        self.secret = secret
        self.realm = realm
        self.port = free_port()
        self.log = directory / "turn.log"
        self.process = None

    def start(self):
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [TURNSERVER, "-n", "--listening-ip=127.0.0.1", f"--listening-port={self.port}",
                 "--relay-ip=127.0.0.1", "--use-auth-secret",
                 f"--static-auth-secret={self.secret}", f"--realm={self.realm}",
                 "--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780",
                 # the tests' peers are all on loopback, which a relay refuses by default
                 "--allow-loopback-peers", "--log-file=stdout", "--simple-log",
                 f"--userdb={self.directory / 'turn.db'}",
                 f"--pidfile={self.directory / 'turn.pid'}"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self.process.returncode}:\n"
                                   + self.log.read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("turnserver did not start")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, transport="udp"):
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def refused(self, username):
        """Whether coturn logged a refusal of C{username}'s credentials."""
        return f"check_stun_auth: Cannot find credentials of user <{username}>" in (
            self.log.read_text())


def allocate(port, username, credential, tcp=False):
    """
    Two relays allocated on the TURN server at C{port} with these
    credentials, relaying a message to each other (C{turnutils_uclient}):
    its exit status -- 0 when they were, 255 when an allocation was refused.
    Blocks: run it in a thread.
    """
    argv = [UCLIENT, "-p", str(port), "-u", username, "-w", credential,
            "-n", "1", "-m", "1", "-y", *(["-t"] if tcp else []), "127.0.0.1"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr
