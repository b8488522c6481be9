"""
The server API of a daemon in this process: its token, a daemon with the
API on, and one request to it.
"""

import json

from twisted.internet import reactor
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from .servers import redis_daemon, start_server

TOKEN = "test-api-token-" + "4f1c9a7e2b6d8053" * 2
ENV = {"ALEATORIA_API_TOKEN": TOKEN}


class _Body:
    """A request body for Agent (twisted.web's FileBodyProducer, from bytes)."""

    def __new__(cls, data):
        from io import BytesIO

        from twisted.web.client import FileBodyProducer

        return FileBodyProducer(BytesIO(data))


async def call(server, method, path, body=None, token=TOKEN, kind=b"application/json",
               raw=None):
    """One API request: the status, the headers, and the body decoded (JSON)."""
    port = server.service.getServiceNamed("api-listener").port.getHost().port
    headers = Headers({b"content-type": [kind]})
    if token is not None:
        headers.addRawHeader(b"authorization", f"Bearer {token}".encode())
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    response = await Agent(reactor).request(
        method.encode(), f"http://127.0.0.1:{port}{path}".encode(), headers,
        _Body(data) if data is not None else None)
    text = await readBody(response)
    return response.code, response.headers, json.loads(text) if text else None


async def api_server(**given):
    given.setdefault("api-port", "tcp:0:interface=127.0.0.1")
    return await start_server(ENV, **given)


async def api_redis_daemon(port, **given):
    given.setdefault("api-port", "tcp:0:interface=127.0.0.1")
    return await redis_daemon(port, ENV, **given)
