"""
The systemd units: valid, sandboxed, and in step with the settings
(issue: hardening, item 6).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aleatoria.daemon import settings

ROOT = Path(__file__).parents[2]
UNITS = ROOT / "systemd"
TWISTD = str(Path(sys.executable).parent / "twistd")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_verify(tmp_path):
    """systemd-analyze verify accepts the units (pointed at this checkout's twistd)."""
    for name in ("aleatoria.service", "aleatoria.socket"):
        text = (UNITS / name).read_text()
        text = text.replace("/opt/aleatoria/venv/bin/twistd", TWISTD)
        text = text.replace("/etc/aleatoria/aleatoria.env", str(UNITS / "aleatoria.env.example"))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "aleatoria.service"),
         str(tmp_path / "aleatoria.socket")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "aleatoria" not in result.stderr, result.stderr


def test_service_is_sandboxed():
    """The service runs without privilege, in systemd's sandbox, logging to the journal."""
    unit = (UNITS / "aleatoria.service").read_text()
    for directive in (
        "--nodaemon --pidfile= aleatoria", "EnvironmentFile=/etc/aleatoria/aleatoria.env",
        "DynamicUser=yes", "Restart=on-failure", "LimitNOFILE=65536", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service", "CapabilityBoundingSet=\n",
    ):
        assert directive in unit, directive
    assert "--logfile" not in unit
    assert "--port systemd:domain=INET6:index=0" in (UNITS / "socket-activation.conf").read_text()


def test_env_example_lists_every_variable():
    """The example environment file names every variable, with its default."""
    example = (UNITS / "aleatoria.env.example").read_text()
    for setting in settings.SETTINGS:
        assert f"#{setting.env}=" in example, setting.env
