"""
docs/howto/vm.rst ("Deploy on a VM with systemd"), followed on this machine as far as it can be:
the package into a virtualenv under an C{opt/aleatoria} of its own, the
units (pointed there) checked by C{systemd-analyze verify}, and the socket
unit with its drop-in run for real under C{systemd-socket-activate}, which
makes the socket as systemd does -- dual-stack -- with clients connecting
through it (issue: operator, item 1).
"""

import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ..support.rawhttp import upgrade_request

ROOT = Path(__file__).parents[2]
UNITS = ROOT / "systemd"
TWISTD = str(Path(sys.executable).parent / "twistd")

needs_systemd_tools = pytest.mark.skipif(
    not (shutil.which("systemd-socket-activate") and shutil.which("systemd-analyze")),
    reason="no systemd-socket-activate or systemd-analyze",
)


def free_port():
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::", 0))
        return probe.getsockname()[1]


def drop_in_command():
    """The daemon's command line, as the drop-in's ExecStart has it."""
    text = (UNITS / "socket-activation.conf").read_text()
    (command,) = re.findall(r"^ExecStart=(.+)$", text, re.M)
    return command.split()


def listen_stream():
    (value,) = re.findall(r"^ListenStream=(.+)$", (UNITS / "aleatoria.socket").read_text(), re.M)
    return value


class Activated:
    """
    C{command} under systemd-socket-activate on C{port}, its log read as it
    comes (the daemon starts on the first connection, as under systemd).
    """

    def __init__(self, port, command, env=()):
        extra = [f"-E{name}={value}" for name, value in env]
        self.process = subprocess.Popen(
            ["systemd-socket-activate", "--fdname=aleatoria.socket", "-l", str(port),
             *extra, *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self._listening.wait(timeout=20), "systemd-socket-activate never listened"

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Listening on"):
                self._listening.set()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=20)
        self._reader.join(timeout=10)
        return "".join(self.lines)


def upgrade(port, user):
    """Open /ws as C{user} from 127.0.0.1; the open socket and the status code."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    origin = f"http://127.0.0.1:{port}"
    raw.sendall(upgrade_request(f"userId={user}", origin, host=f"127.0.0.1:{port}"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            raw.close()
            raise ConnectionError("closed before answering")
        head += chunk
    return raw, int(head.split(b" ", 2)[1])


@needs_systemd_tools
def test_deploy_on_a_vm(tmp_path):
    """
    The walkthrough: a virtualenv with the package, the units verified, the
    socket activated; two connections from one address are let in and two
    more refused (--max-connections-per-ip 2), and the log names the client
    by its IPv4 address, not as a mangled IPv6 one.
    """
    opt = tmp_path / "opt" / "aleatoria"
    shutil.copytree(ROOT, opt / "src", ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(opt / "venv")], check=True)
    subprocess.run([str(opt / "venv" / "bin" / "pip"), "install", "--quiet",
                    "--disable-pip-version-check", str(opt / "src")], check=True, cwd=tmp_path)
    subprocess.run([str(opt / "venv" / "bin" / "python"), "-c",
                    "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"],
                   check=True, cwd=tmp_path)
    (caches,) = [list(p.glob("twisted/plugins/dropin.cache"))
                 for p in (opt / "venv" / "lib").glob("python3*/site-packages")]
    assert caches, "no plugin cache built at install time"

    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(UNITS / "aleatoria.env.example", etc / "aleatoria.env")
    for name in ("aleatoria.service", "aleatoria.socket"):
        text = (UNITS / name).read_text().replace("/opt/aleatoria", str(opt))
        (etc / name).write_text(text.replace("/etc/aleatoria/aleatoria.env",
                                             str(etc / "aleatoria.env")))
    verified = subprocess.run(["systemd-analyze", "verify", "aleatoria.service",
                               "aleatoria.socket"], cwd=etc, capture_output=True, text=True)
    assert verified.returncode == 0 and "aleatoria" not in verified.stderr, verified.stderr

    assert listen_stream() == "8085"  # a bare port: one dual-stack socket
    command = [word.replace("/opt/aleatoria", str(opt)) for word in drop_in_command()]
    port = free_port()
    daemon = Activated(port, command, env=[("ALEATORIA_MAX_CONNECTIONS_PER_IP", "2")])
    sockets = []
    try:
        statuses = []
        for user in ("ann", "bea", "cal", "dee"):
            raw, status = upgrade(port, user)
            sockets.append(raw)
            statuses.append(status)
        assert statuses == [101, 101, 429, 429]
    finally:
        for raw in sockets:
            raw.close()
        log = daemon.stop()
    assert "ann connected from 127.0.0.1, room" in log, log
    assert "tcp6" not in log and "ffff" not in log, log


def test_a_missing_socket_is_one_line(tmp_path):
    """--port systemd:... with no socket passed in: one line on stderr, status 1."""
    result = subprocess.run(
        [TWISTD, "--nodaemon", "--pidfile=", "aleatoria",
         "--port", "systemd:domain=INET6:index=0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no such socket was passed to this process" in line
    assert "Traceback" not in result.stdout


@needs_systemd_tools
def test_the_wrong_domain_is_one_line(tmp_path):
    """
    domain=INET for the dual-stack socket systemd makes: refused with one
    line that says which domain it is, instead of garbage client addresses.
    """
    port = free_port()
    daemon = Activated(port, [TWISTD, "--nodaemon", "--pidfile=", "aleatoria",
                              "--port", "systemd:domain=INET:index=0"])
    try:
        with pytest.raises(OSError):
            upgrade(port, "ann")
        assert daemon.process.wait(timeout=60) == 1
    finally:
        log = daemon.stop()
    assert "the socket passed in is INET6; say domain=INET6" in log, log
    assert "Traceback" not in log, log
