"""
The wheel, installed as users install it (not editable), provides the
twistd plugin: `twistd aleatoria --help` lists the options and
`twistd -n aleatoria` serves.
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TWISTD = str(Path(sys.executable).parent / "twistd")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """
    The built wheel, and an environment that imports from its installed
    copy. Built from a copy of the tree: setuptools builds in the source's
    build/, which two test workers must not share.
    """
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(work / "dist"), str(source)],
        check=True, cwd=work,
    )
    (wheel,) = (work / "dist").glob("aleatoria-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(work / "site"), str(wheel)],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=str(work / "site"))
    return wheel, work, env


def run_python(code, installed):
    _, work, env = installed
    return subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                          capture_output=True, text=True, check=True).stdout


def test_wheel_ships_the_plugin_without_init_files(installed):
    """twisted/plugins/ is a shared namespace: ship our file, no __init__.py."""
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/aleatoria_plugin.py" in names
    assert "twisted/__init__.py" not in names
    assert "twisted/plugins/__init__.py" not in names
    assert "aleatoria/memory/backend.py" in names
    assert "aleatoria/redis/lua/save_room.lua" in names


def test_plugin_found_in_installed_copy(installed):
    """getPlugins(IServiceMaker) finds 'aleatoria', loaded from the installed files."""
    _, work, _ = installed
    found = json.loads(run_python(
        "import json, aleatoria\n"
        "from twisted.plugin import getPlugins\n"
        "from twisted.application.service import IServiceMaker\n"
        "import twisted.plugins.aleatoria_plugin as p\n"
        "names = [m.tapname for m in getPlugins(IServiceMaker)]\n"
        "print(json.dumps([names, aleatoria.__file__, p.__file__]))",
        installed,
    ))
    names, package, plugin = found
    assert "aleatoria" in names
    assert package.startswith(str(work / "site"))
    assert plugin.startswith(str(work / "site"))


def test_twistd_help_lists_options(installed):
    """`twistd aleatoria --help` lists every option."""
    text = _twistd(installed, "aleatoria", "--help").stdout
    for option in ("--port", "--allowed-origin", "--allow-no-origin", "--store",
                   "--history-size", "--message-ttl-hours"):
        assert option in text


def _twistd(installed, *args, **kwargs):
    _, work, env = installed
    return subprocess.run(
        [TWISTD, *args], cwd=work, env=env,
        capture_output=True, text=True, **kwargs,
    )


@contextmanager
def running_daemon(installed):
    """The installed daemon under twistd on a free loopback port: (process, port)."""
    _, work, env = installed
    daemon = subprocess.Popen(
        [TWISTD, "--nodaemon", "--pidfile=", "aleatoria",
         "--port", "tcp:0:interface=127.0.0.1", "--allow-no-origin"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in daemon.stdout:
            found = re.search(r"Listening on \S*:(\d+)", line)
            if found:
                break
        else:
            pytest.fail("the daemon never listened")
        yield daemon, int(found[1])
    finally:
        daemon.kill()
        daemon.wait()


@contextmanager
def raw_websocket(port):
    """A WebSocket opened by hand, as a plain socket past the 101 response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(
            b"GET /ws?userId=alice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert _read_until(client, b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        yield client


def _close_frame(client):
    """The code and reason of the next close frame (unmasked, short reason)."""
    _read_until(client, b"\x88")
    (length,) = _read_exactly(client, 1)
    payload = _read_exactly(client, length)
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_twistd_serves_and_stops_on_sigterm(installed):
    """
    `twistd -n aleatoria` listens and answers /health; on SIGTERM it closes a
    connected client with 1001 and a retry hint, and exits (within the 5 s a
    supervisor gives).
    """
    with running_daemon(installed) as (daemon, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.read() == b'{"status":"ok"}'
        with raw_websocket(port) as client:
            daemon.terminate()
            assert _close_frame(client) == (1001, "server shutting down; retry-after=5")
        # twistd re-raises the SIGTERM it handled once shut down cleanly.
        assert daemon.wait(timeout=5) in (0, -15)


def test_second_sigterm_exits_at_once(installed):
    """
    A client that never answers the close keeps the first SIGTERM's graceful
    shutdown waiting; a second SIGTERM ends the process at once (143).
    """
    with running_daemon(installed) as (daemon, port), raw_websocket(port) as client:
        daemon.terminate()
        _close_frame(client)
        daemon.terminate()
        assert daemon.wait(timeout=5) == 143


def _read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def _read_until(sock, marker):
    data = b""
    while marker not in data:
        chunk = sock.recv(1)
        assert chunk, "connection closed early"
        data += chunk
    return data


@pytest.mark.parametrize("document", ["README.rst", "docs/protocol.rst"])
def test_documents_render_cleanly(document):
    """The README (the package's long description) and the reference are valid reStructuredText."""
    import io

    import docutils.core

    warnings = io.StringIO()
    docutils.core.publish_string(
        (ROOT / document).read_text(), writer="null",
        settings_overrides={"report_level": 2, "halt_level": 2, "warning_stream": warnings},
    )
    assert warnings.getvalue() == ""


def test_wheel_ships_the_license(installed):
    """The MIT license setup.cfg names is in the wheel."""
    wheel, _, _ = installed
    assert any(name.endswith("/LICENSE") for name in zipfile.ZipFile(wheel).namelist())


def test_version_is_aleatorias(installed):
    """
    `twistd aleatoria --version` and the `aleatoria --version` console
    script print Aleatoria's version; `twistd aleatoria --help` names it.
    """
    from aleatoria import __version__

    assert _twistd(installed, "aleatoria", "--version").stdout.startswith(
        f"aleatoria {__version__} (Twisted ")
    assert f"Aleatoria {__version__}." in _twistd(installed, "aleatoria", "--help").stdout
    _, work, env = installed
    script = subprocess.run([str(work / "site" / "bin" / "aleatoria"), "--version"], env=env,
                            capture_output=True, text=True, check=True)
    assert script.stdout.startswith(f"aleatoria {__version__} (Twisted ")


def test_the_aleatoria_command_serves(installed):
    """
    `aleatoria --port ...` is the daemon in the foreground, as `twistd -n
    aleatoria --port ...` (issue #28: it used to print how to run twistd).
    """
    _, work, env = installed
    daemon = subprocess.Popen(
        [str(work / "site" / "bin" / "aleatoria"), "--port", "tcp:0:interface=127.0.0.1"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in daemon.stdout:
            found = re.search(r"Listening on \S*:(\d+)", line)
            if found:
                break
        else:
            pytest.fail("the aleatoria command never listened")
        with urllib.request.urlopen(f"http://127.0.0.1:{found[1]}/health", timeout=10) as answer:
            assert json.load(answer) == {"status": "ok"}
    finally:
        daemon.terminate()
        daemon.communicate(timeout=30)
    assert not (work / "twistd.pid").exists()


def test_the_contract_is_in_the_repository():
    """No document points at a contract outside the repository."""
    for path in [ROOT / "README.rst", *(ROOT / "docs").rglob("*.rst"),
                 *(ROOT / "aleatoria").rglob("*.py")]:
        assert "PROTOCOL.md" not in path.read_text(), path


@pytest.mark.parametrize("target, command, packages", [
    ("node", "npm", "nodejs npm"),
    ("redis-server", "redis-server", "redis-server"),
])
def test_make_test_installs_what_it_needs(tmp_path, target, command, packages):
    """
    On a machine without it, `make test` installs Node/npm and redis-server
    with apt-get (a stand-in here, which records what it was asked); where
    the command exists already, it installs nothing.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "apt-get.log"
    apt = bin_dir / "apt-get"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {record}\n")
    apt.chmod(0o755)
    make = shutil.which("make")
    env = {"PATH": str(bin_dir)}
    subprocess.run([make, "-s", "-C", str(ROOT), target], env=env, check=True,
                   capture_output=True)
    assert f"install -y -qq {packages}" in record.read_text()

    record.unlink()
    present = bin_dir / command
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    subprocess.run([make, "-s", "-C", str(ROOT), target], env=env, check=True,
                   capture_output=True)
    assert not record.exists()


def test_wheel_ships_the_demo_app(installed):
    """The demo's files are package data, the client among them as a file, not a link."""
    from pathlib import Path

    wheel, _, _ = installed
    archive = zipfile.ZipFile(wheel)
    for name in ("index.html", "app.js", "style.css", "aleatoria.js"):
        assert f"aleatoria/http/demo/{name}" in archive.namelist(), name
    client = Path(__file__).parents[2] / "clients" / "js" / "aleatoria.js"
    assert archive.read("aleatoria/http/demo/aleatoria.js") == client.read_bytes()


def test_the_javascript_client_packs():
    """npm pack makes the client's package: the module, its types and its README."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("npm") is None:
        pytest.fail("npm is not installed (make test installs it)")
    client = Path(__file__).parents[2] / "clients" / "js"
    done = subprocess.run(["npm", "pack", "--dry-run", "--json"], cwd=client,
                          capture_output=True, text=True, timeout=120, check=True)
    (packed,) = json.loads(done.stdout)
    assert packed["name"] == "aleatoria-client"
    assert {f["path"] for f in packed["files"]} == {
        "aleatoria.js", "aleatoria.d.ts", "README.md", "package.json"}
