"""
Bans (issue #24, section 3): the server API sets, lists and lifts them,
on the memory store and on Redis, where each is kept until it ends.
"""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from .conftest import stop_server
from .lifecycle_helpers import WAIT, until
from .test_api import api_redis_daemon, api_server, call


async def soon(check):
    """Wait until the coroutine function C{check} answers true, at most WAIT seconds."""
    for _ in range(int(WAIT / 0.05)):
        if await check():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition never held")


@pytest_twisted.async_yield_fixture(params=["memory", "redis"])
async def daemon(request):
    """A daemon with the server API, on each store in turn (Redis: a prefix of its own)."""
    if request.param == "memory":
        server = await api_server()
    else:
        redis = request.getfixturevalue("redis_server")
        server = await api_redis_daemon(
            redis.port, **{"redis-prefix": request.getfixturevalue("redis_prefix")})
        server.redis = redis
    yield server
    await stop_server(server)


@pytest_twisted.ensureDeferred
async def test_bans_are_set_listed_and_lifted(daemon):
    """
    POST answers 201 with the ban, its id and end; GET lists those in
    force, the newest first; DELETE lifts one (then it is gone: 404).
    """
    status, _, user_ban = await call(daemon, "POST", "/api/v1/bans",
                                     {"userId": "bob", "seconds": 600, "reason": "spam"})
    assert status == 201, user_ban
    assert (user_ban["userId"], user_ban["reason"]) == ("bob", "spam")
    assert "address" not in user_ban and user_ban["id"]
    assert user_ban["createdAt"] < user_ban["expiresAt"]
    status, _, range_ban = await call(daemon, "POST", "/api/v1/bans",
                                      {"address": "2001:db8::7/32", "seconds": 60})
    assert status == 201, range_ban
    assert (range_ban["address"], range_ban["reason"]) == ("2001:db8::/32", "")
    status, _, mapped = await call(daemon, "POST", "/api/v1/bans",
                                   {"address": "::ffff:203.0.113.9", "seconds": 60})
    assert (status, mapped["address"]) == (201, "203.0.113.9/32")

    status, _, listed = await call(daemon, "GET", "/api/v1/bans")
    assert (status, listed) == (200, {"bans": [mapped, range_ban, user_ban], "count": 3})
    if daemon.backend.kind == "redis":
        prefix = daemon.backend.keys.prefix
        ttl = int(daemon.redis.raw("PTTL", f"{prefix}ban:{user_ban['id']}"))
        assert 590_000 < ttl <= 600_000

    status, _, lifted = await call(daemon, "DELETE", f"/api/v1/bans/{user_ban['id']}")
    assert (status, lifted) == (200, user_ban)
    status, _, listed = await call(daemon, "GET", "/api/v1/bans")
    assert listed == {"bans": [mapped, range_ban], "count": 2}
    status, _, problem = await call(daemon, "DELETE", f"/api/v1/bans/{user_ban['id']}")
    assert (status, problem["code"]) == (404, "not_found")
    if daemon.backend.kind == "redis":
        assert daemon.redis.raw("EXISTS", f"{prefix}ban:{user_ban['id']}") == "0"


@pytest_twisted.ensureDeferred
async def test_a_ban_ends_by_itself(daemon):
    """A ban of one second is listed, then not; on Redis its keys are gone with it."""
    status, _, ban = await call(daemon, "POST", "/api/v1/bans",
                                {"userId": "bob", "seconds": 1})
    listed = (await call(daemon, "GET", "/api/v1/bans"))[2]
    assert listed["bans"] == [ban]

    async def over():
        return (await call(daemon, "GET", "/api/v1/bans"))[2]["count"] == 0

    await soon(over)
    if daemon.backend.kind == "redis":
        prefix = daemon.backend.keys.prefix
        await until(lambda: daemon.redis.raw(
            "EXISTS", f"{prefix}ban:{ban['id']}", f"{prefix}bans") == "0")
    status, _, problem = await call(daemon, "DELETE", f"/api/v1/bans/{ban['id']}")
    assert status == 404


@pytest.mark.parametrize("body", [
    pytest.param(b'{"userId": "bob"}', id="no-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 0}', id="zero-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 1.5}', id="fraction"),
    pytest.param(b'{"userId": "bob", "seconds": "60"}', id="text-seconds"),
    pytest.param(b'{"userId": "bob", "seconds": 999999999999}', id="ages"),
    pytest.param(b'{"seconds": 60}', id="no-target"),
    pytest.param(b'{"userId": "bob", "address": "203.0.113.1", "seconds": 60}', id="both"),
    pytest.param(b'{"userId": "b o b", "seconds": 60}', id="bad-user"),
    pytest.param(b'{"userId": "system", "seconds": 60}', id="system"),
    pytest.param(b'{"address": "203.0.113.300", "seconds": 60}', id="bad-address"),
    pytest.param(b'{"address": "203.0.113.0/33", "seconds": 60}', id="bad-prefix"),
    pytest.param(b'{"address": "example.com", "seconds": 60}', id="host-name"),
    pytest.param(b'{"userId": "bob", "seconds": 60, "reason": "' + b"x" * 501 + b'"}',
                 id="long-reason"),
    pytest.param(b'{"userId": "bob", "seconds": 60, "until": 5}', id="unknown-field"),
    pytest.param(b"[1, 2]", id="not-an-object"),
])
@pytest_twisted.ensureDeferred
async def test_bad_bans_are_refused(daemon, body):
    """A bad body is a 400 problem saying what is wrong, and bans nobody."""
    status, headers, problem = await call(daemon, "POST", "/api/v1/bans", raw=body)
    assert (status, problem["code"]) == (400, "invalid_message"), problem
    assert headers.getRawHeaders(b"content-type") == [b"application/problem+json"]
    assert problem["detail"]
    assert (await call(daemon, "GET", "/api/v1/bans"))[2] == {"bans": [], "count": 0}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/v1/bans", {"userId": "bob", "seconds": 60}),
    ("GET", "/api/v1/bans", None),
    ("DELETE", "/api/v1/bans/0123", None),
])
@pytest_twisted.ensureDeferred
async def test_the_ban_routes_need_the_token(method, path, body):
    server = await api_server()
    try:
        status, _, problem = await call(server, method, path, body, token="wrong")
        assert (status, problem["code"]) == (401, "unauthorized")
        assert (await call(server, "GET", "/api/v1/bans"))[2]["count"] == 0
    finally:
        await stop_server(server)
