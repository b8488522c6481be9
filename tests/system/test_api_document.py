"""
The server API's OpenAPI document held to a live twistd daemon by
schemathesis.
"""

import subprocess
import sys
from pathlib import Path

from ..support.api import TOKEN
from ..support.daemons import Spawned
from ..support.redis_server import free_port


def test_schemathesis_holds_the_api_to_its_document(tmp_path):
    """
    schemathesis generates requests from /api/v1/openapi.json and checks
    the live daemon's answers against it: no server error, only documented
    statuses and content types, answers that match their schemas, invalid
    data refused, and the token required.
    """
    port = free_port()
    daemon = Spawned(None, tmp_path, "--api-port", f"tcp:{port}:interface=127.0.0.1",
                     "--api-rate", "100000", "--api-burst", "100000",
                     "--api-auth-failures", "100000",
                     env={"ALEATORIA_API_TOKEN": TOKEN})
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run",
             f"http://127.0.0.1:{port}/api/v1/openapi.json",
             "--header", f"Authorization: Bearer {TOKEN}",
             "--checks", "not_a_server_error,status_code_conformance,"
                         "content_type_conformance,response_schema_conformance,"
                         "negative_data_rejection,ignored_auth",
             "--max-examples", "40", "--seed", "1", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        log = daemon.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:] + log[-2000:]
