"""
A bad setting stops twistd itself: one line on stderr, status 1.
"""

from pathlib import Path


def test_a_bad_value_is_one_line_on_stderr_and_status_1(tmp_path):
    """twistd with a bad variable prints one line on stderr (no usage) and exits 1."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    twistd = str(Path(sys.executable).parent / "twistd")
    result = subprocess.run([twistd, "--nodaemon", "--pidfile=", "aleatoria"], cwd=tmp_path,
                            env=dict(os.environ, MESSAGE_TTL_HOURS="-3"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "aleatoria: MESSAGE_TTL_HOURS='-3': must be at least 1\n"


def test_a_weak_secret_stops_twistd_with_status_1(tmp_path):
    """twistd with a short API token prints one line naming it, and exits 1."""
    import os
    import subprocess
    import sys

    twistd = str(Path(sys.executable).parent / "twistd")
    result = subprocess.run([twistd, "--nodaemon", "--pidfile=", "aleatoria"], cwd=tmp_path,
                            env=dict(os.environ, ALEATORIA_API_TOKEN="hunter2"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        "aleatoria: ALEATORIA_API_TOKEN: has 7 bytes; a secret needs at least 32 "
        "(make one with openssl rand -hex 32)\n")
