"""
The credentials a daemon mints, checked by a real coturn with
use-auth-secret (issue #25): a relay is allocated with them; one forged
(signed with another secret) or expired is refused.
"""

import time
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from aleatoria.edge.ice import IceServers, credential

from ..support.servers import start_server, stop_server
from ..support.turn_server import TURNSERVER, TurnServer, allocate

SECRET = "coturn-secret-" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    if TURNSERVER is None:
        pytest.fail("coturn is not installed (make test installs it)")
    server = TurnServer(tmp_path_factory.mktemp("coturn"), SECRET).start()
    yield server
    server.stop()


@pytest_twisted.ensureDeferred
async def test_a_daemons_credentials_allocate_a_relay(coturn):
    """What a client gets in ice_servers allocates relays on coturn, over UDP and TCP."""
    server = await start_server(env={"ALEATORIA_TURN_SECRET": SECRET}, **{
        "turn-url": f"{coturn.url('udp')},{coturn.url('tcp')}"})
    try:
        alice = await server.connect("alice")
        (turn,) = alice.ice_servers["payload"]["iceServers"]
        for url in turn["urls"]:
            where = urlsplit(url.replace("turn:", "turn://", 1))
            status, output = await deferToThread(
                allocate, where.port, turn["username"], turn["credential"],
                tcp=where.query == "transport=tcp")
            assert status == 0, output
        assert not coturn.refused(turn["username"])
    finally:
        await stop_server(server)


@pytest.mark.parametrize("minted", [
    pytest.param(lambda: IceServers(turn=["turn:t"], secret="another-" + SECRET).fresh(),
                 id="forged"),
    pytest.param(lambda: IceServers(turn=["turn:t"], secret=SECRET, ttl=60,
                                    seconds=lambda: time.time() - 61).fresh(),
                 id="expired"),
])
def test_forged_or_expired_credentials_are_refused(coturn, minted):
    """coturn refuses the allocation and logs why: no such credentials."""
    (turn,) = minted()["iceServers"]
    status, output = allocate(coturn.port, turn["username"], turn["credential"])
    assert status == 255 and "Cannot complete Allocation" in output
    assert coturn.refused(turn["username"])


def test_the_same_credentials_signed_right_are_taken(coturn):
    """The control of the test above: a user name of the same shape, signed with the secret."""
    username = f"{int(time.time()) + 60}:control"
    status, output = allocate(coturn.port, username, credential(SECRET, username))
    assert status == 0, output
