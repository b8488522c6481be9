"""
Token authentication at the handshake, through real connections
(issue: hardening, item 1).
"""

import json
import time

import jwt
import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from ..support.servers import ORIGIN, start_server, stop_server

SECRET = "test-secret-" + "0123456789abcdef" * 4


def token(key=SECRET, algorithm="HS256", **claims):
    claims.setdefault("sub", "alice")
    claims.setdefault("exp", int(time.time()) + 300)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm)


@pytest.fixture
def secured():
    servers = []

    async def start(env=None, **given):
        servers.append(await start_server(env or {"ALEATORIA_JWT_SECRET": SECRET}, **given))
        return servers[-1]

    yield start
    for server in servers:
        pytest_twisted.blockon(Deferred.fromCoroutine(stop_server(server)))


async def handshake(server, query):
    headers = Headers({b"Connection": [b"Upgrade"], b"Upgrade": [b"websocket"],
                       b"Sec-WebSocket-Version": [b"13"],
                       b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ=="],
                       b"Origin": [ORIGIN.encode()]})
    response = await Agent(reactor).request(b"GET", server.url(f"/ws?{query}"), headers)
    assert not response.headers.hasHeader(b"Sec-WebSocket-Accept")
    return response.code


@pytest_twisted.ensureDeferred
async def test_the_token_names_the_user(secured):
    """With tokens on, the user is the token's sub; a matching userId is fine."""
    server = await secured()
    client = await server.connect(None, extra=f"&token={token()}")
    assert "alice" in server.hub.connections
    await client.close()
    await server.connect("alice", extra=f"&token={token()}")
    assert "alice" in server.hub.connections


@pytest.mark.parametrize("query", [
    pytest.param("userId=alice", id="no-token"),
    pytest.param(f"userId=mallory&token={token()}", id="userId-disagrees"),
    pytest.param(f"token={token(exp=int(time.time()) - 60)}", id="expired"),
    pytest.param(f"token={token(key='another-' + 'secret0123456789' * 4)}", id="wrong-key"),
    pytest.param("token=not.a.jwt", id="malformed"),
    pytest.param(f"token={token(exp=None)}", id="no-expiry"),
    pytest.param(f"token={token(sub='bad user')}", id="bad-sub"),
    pytest.param(f"token={token(algorithm='HS512')}", id="other-algorithm"),
    pytest.param(f"token={token(rooms='lobby')}", id="rooms-not-a-list"),
])
@pytest_twisted.ensureDeferred
async def test_bad_tokens_refused_with_401(secured, query):
    """Missing, expired, forged, malformed or contradicted tokens: 401, no upgrade."""
    server = await secured()
    assert await handshake(server, query) == 401
    assert server.hub.connection_count == 0


@pytest_twisted.ensureDeferred
async def test_audience_and_issuer(secured):
    """With an audience and issuer configured, tokens must carry both."""
    server = await secured({"ALEATORIA_JWT_SECRET": SECRET, "ALEATORIA_JWT_AUDIENCE": "chat",
                            "ALEATORIA_JWT_ISSUER": "https://app.example"})
    assert await handshake(server, f"token={token(aud='chat')}") == 401
    assert await handshake(server, f"token={token(iss='https://app.example')}") == 401
    good = token(aud="chat", iss="https://app.example")
    await server.connect(None, extra=f"&token={good}")
    assert "alice" in server.hub.connections


@pytest_twisted.ensureDeferred
async def test_rooms_claim_limits_joins(secured):
    """A rooms claim allows exactly its names and prefix* patterns (forbidden otherwise)."""
    server = await secured()
    claim = token(rooms=["Lobby", "team-*"])
    assert await handshake(server, f"token={claim}&room=secret") == 403
    alice = await server.connect(None, room="Lobby", extra=f"&token={claim}")
    await alice.request({"type": "join_room", "room": "team-blue"}, "room_joined")
    error = await alice.request({"type": "join_room", "room": "teams"}, "error")
    assert error["payload"]["code"] == "forbidden"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
@pytest_twisted.ensureDeferred
async def test_public_key_tokens(secured, tmp_path, algorithm):
    """With a public key file, RS256 and ES256 tokens signed by its private key work."""
    private = (rsa.generate_private_key(65537, 2048) if algorithm == "RS256"
               else ec.generate_private_key(ec.SECP256R1()))
    public = tmp_path / "public.pem"
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    server = await secured({"ALEATORIA_JWT_PUBLIC_KEY_FILE": str(public)})
    await server.connect(None, extra=f"&token={token(private, algorithm)}")
    assert "alice" in server.hub.connections
    assert await handshake(server, f"token={token()}") == 401


@pytest_twisted.ensureDeferred
async def test_anonymous_clients_are_named_and_come_back_as_themselves():
    """
    With --anonymous the server names each client and signs the name: the
    token brings it back as itself (its direct messages waiting), a forged
    one is refused, and nobody may choose a name (issue: security, item 3).
    """
    from ..support.rawhttp import exchange, upgrade_request
    from ..support.wsclient import connect

    server = await start_server(anonymous=True,
                                env={"ALEATORIA_ANONYMOUS_SECRET": ANONYMOUS_SECRET})
    try:
        first = await connect(server.port, None, "r", origin=ORIGIN)
        welcome = (await first.expect("welcome"))["payload"]
        user, reconnect = welcome["userId"], welcome["reconnectToken"]
        assert user.startswith("anon-") and user in server.hub.connections
        other = await connect(server.port, None, "elsewhere", origin=ORIGIN)
        stranger = (await other.expect("welcome"))["payload"]["userId"]
        assert stranger != user
        await first.close()
        other.send({"type": "chat_message", "toUser": user, "payload": {"content": "hi"}})
        await other.expect("chat_message")

        back = await connect(server.port, None, "r", origin=ORIGIN,
                             extra=f"&reconnectToken={reconnect}")
        again = (await back.expect("welcome"))["payload"]
        assert again["userId"] == user
        assert int(again["reconnectToken"].split(".")[1]) >= int(reconnect.split(".")[1])
        history = await back.request({"type": "get_direct_messages",
                                      "payload": {"withUser": stranger}}, "direct_messages")
        assert [m["payload"]["content"] for m in history["payload"]["messages"]] == ["hi"]

        forged = f"{stranger}.{int(time.time())}.{'0' * 32}"
        for query, status in ((f"reconnectToken={forged}", 401), (f"userId={user}", 400)):
            line, _, _ = await deferToThread(exchange, server.port,
                                             upgrade_request(query, ORIGIN))
            assert f" {status} " in line, line
        assert user in server.hub.connections
        await back.close()
        await other.close()
    finally:
        await stop_server(server)


ANONYMOUS_SECRET = "anonymous-" + "0123456789abcdef" * 3
DAY = 86400


async def reconnect_status(server, token):
    """The status a handshake with reconnect token C{token} gets."""
    from urllib.parse import quote

    from ..support.rawhttp import exchange, upgrade_request

    line, _, _ = await deferToThread(exchange, server.port,
                                     upgrade_request(f"reconnectToken={quote(token)}", ORIGIN))
    return int(line.split()[1])


@pytest_twisted.ensureDeferred
async def test_anonymous_tokens_expire_and_name_only_server_made_ids():
    """
    A reconnect token carries its issue time and is refused (401) past
    --anonymous-token-days, or from the future; one for an id the server
    does not make -- admin, a chosen user, an anon- id of another shape --
    is refused though its MAC is right (as if the secret were guessed); so
    is a token of the first format, which says nothing of its age
    (issue: attacks, item 6).
    """
    import hashlib
    import hmac

    from aleatoria.edge.auth import Anonymous

    from ..support.wsclient import connect

    server = await start_server(anonymous=True, **{"anonymous-token-days": "2"},
                                env={"ALEATORIA_ANONYMOUS_SECRET": ANONYMOUS_SECRET})
    try:
        signer, now = Anonymous(ANONYMOUS_SECRET), int(time.time())
        user = "anon-0123456789abcdef"

        def first_format(user):
            mac = hmac.new(ANONYMOUS_SECRET.encode(), user.encode(), hashlib.sha256)
            return f"{user}.{mac.hexdigest()[:32]}"

        for token in (signer.token(user, now - 2 * DAY - 60),
                      signer.token(user, now + 3600),
                      signer.token("admin", now), signer.token("alice", now),
                      signer.token("anon-0123456789ABCDEF", now),
                      signer.token("anon-0123", now),
                      f"{signer.token(user, now)}.x",
                      first_format(user), first_format("admin"),
                      Anonymous("another-" + ANONYMOUS_SECRET).token(user, now),
                      f"{user}.{now}.{'é' * 32}"):
            assert await reconnect_status(server, token) == 401, token
        assert server.hub.connection_count == 0

        client = await connect(server.port, None, "r", origin=ORIGIN,
                               extra=f"&reconnectToken={signer.token(user, now - DAY)}")
        welcome = (await client.expect("welcome"))["payload"]
        assert welcome["userId"] == user
        fresh = welcome["reconnectToken"]
        assert abs(int(fresh.split(".")[1]) - now) < 60
        await client.close()
        assert await reconnect_status(server, fresh) == 101
    finally:
        await stop_server(server)


def test_anonymous_tokens_expire_on_the_given_day():
    """A token is good for exactly --anonymous-token-days after it was issued."""
    from autobahn.websocket.types import ConnectionDeny

    from aleatoria.edge.auth import Anonymous

    now = [1_800_000_000.0]
    anonymous = Anonymous(ANONYMOUS_SECRET, days=30, seconds=lambda: now[0])
    token = anonymous.identify({}).reconnect_token
    user = token.split(".")[0]
    now[0] += 30 * DAY
    assert anonymous.identify({"reconnectToken": [token]}).user == user
    now[0] += 1
    with pytest.raises(ConnectionDeny) as refused:
        anonymous.identify({"reconnectToken": [token]})
    assert refused.value.code == 401 and "expired" in refused.value.reason


def test_anonymous_and_tokens_exclude_each_other():
    from aleatoria.daemon import config

    with pytest.raises(config.ConfigError, match="--anonymous"):
        config.resolve({"anonymous": True}, {"ALEATORIA_JWT_SECRET": SECRET})


@pytest_twisted.ensureDeferred
async def test_a_refusal_shows_no_library_internals(secured, tmp_path):
    """
    A token for the wrong kind of key is refused in words of our own, not
    PyJWT's (which named key types and generator objects; issue: security,
    item 14).
    """
    from ..support.rawhttp import exchange, upgrade_request

    private = rsa.generate_private_key(65537, 2048)
    public = tmp_path / "public.pem"
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    server = await secured({"ALEATORIA_JWT_PUBLIC_KEY_FILE": str(public)})
    for bad in (token(), token(private, "RS256", exp=int(time.time()) - 10)):
        status, _, body = await deferToThread(
            exchange, server.port, upgrade_request(f"token={bad}", ORIGIN))
        assert " 401 " in status
        reason = json.loads(body)["error"]
        assert reason in ("invalid token: not signed by a key of ours, or malformed",
                          "invalid token: expired"), reason
