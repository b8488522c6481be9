"""
RFC 6455 on the daemon's frame path, by the Autobahn test suite's own
cases (sections 1-7 and 9: framing, pings, reserved bits, opcodes,
fragmentation, UTF-8, closing, limits and sizes), run by kosoku against
an echo server made of the mixins ClientProtocol reads frames with
(tests/support/echo_server.py): every case passes, and each is scored
as Autobahn alone -- without the lean path -- is scored: passed or
failed, closed as cleanly, with the same close code. (OK and NON-STRICT
are one verdict here: in cases such as 4.2.4 which of the two a server
gets depends on whether the frames after a bad one had arrived before it
failed the connection -- timing, not the server.)
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kosoku")

SECTIONS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scores(tmp_path, *flags):
    """Each case's verdicts against the echo server (with C{flags}), by case id."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.support.echo_server", str(port),
                               *flags], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[2])
    try:
        assert server.stdout.readline().strip() == "listening"
        out = tmp_path / ("plain" if flags else "lean")
        kosoku = Path(sys.executable).parent / "kosoku"
        command = [str(kosoku), f"127.0.0.1:{port}", "-p", "2", "-o", str(out)]
        for section in SECTIONS:
            command += ["-i", section]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        (agent,) = json.loads((out / "index.json").read_text()).values()
        return run.returncode, {case: (_verdict(v["behavior"]), _verdict(v["behaviorClose"]),
                                       v.get("remoteCloseCode"))
                                for case, v in agent.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)


PASSED = {"OK", "NON-STRICT", "INFORMATIONAL"}


def _verdict(behavior):
    """A case's verdict: passed, or what else Autobahn said (FAILED, UNIMPLEMENTED...)."""
    return "passed" if behavior in PASSED else behavior


def test_every_case_passes_as_autobahn_alone_scores_it(tmp_path):
    lean_code, lean = scores(tmp_path)
    plain_code, plain = scores(tmp_path, "--plain")
    assert len(lean) == len(plain) == 300  # 246 cases in 1-7, 54 in 9
    assert lean == plain
    failing = {case: v for case, v in lean.items() if v[:2] != ("passed", "passed")}
    assert failing == {}
    assert lean_code == plain_code == 0
