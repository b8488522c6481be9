"""
A real HTTP endpoint that receives webhooks, in the test process: it
keeps every request's headers and body, verifies them with the
C{standardwebhooks} package (an app's own library), and answers as a
test tells it: 2xx, an error N times, or never.
"""

import base64
import json

from standardwebhooks import Webhook
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .lifecycle_helpers import until

SECRET = "whsec_" + base64.b64encode(b"a test key of thirty-two bytes!!").decode()


class _Hook(Resource):
    isLeaf = True

    def __init__(self, receiver):
        super().__init__()
        self._receiver = receiver

    def render_POST(self, request):
        receiver = self._receiver
        headers = {k.decode().lower(): v[0].decode()
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        attempt = (headers, request.content.read())
        receiver.attempts.append(attempt)
        if receiver.hang:
            receiver.hanging.append(request)
            return NOT_DONE_YET
        if receiver.failures > 0:
            receiver.failures -= 1
            request.setResponseCode(503)
            return b"not now"
        receiver.received.append(attempt)
        request.setResponseCode(204)
        return b""


def _server_tls(cert, key):
    from twisted.internet import ssl

    return ssl.PrivateCertificate.loadPEM(
        cert.read_text() + key.read_text()).options()


class WebhookReceiver:
    """
    Listens on a free loopback port at C{url}. C{failures}: answer 503 so
    many times first; C{hang}: never answer; C{tls}: the paths of a
    certificate (for localhost) and its key, to be reached over https.
    """

    def __init__(self, failures=0, hang=False, tls=None):
        self.attempts = []
        self.received = []
        self.hanging = []
        self.failures = failures
        self.hang = hang
        site = Site(_Hook(self))
        if tls is None:
            self._port = reactor.listenTCP(0, site, interface="127.0.0.1")
            where = f"http://127.0.0.1:{self._port.getHost().port}"
        else:
            self._port = reactor.listenSSL(0, site, _server_tls(*tls), interface="127.0.0.1")
            where = f"https://localhost:{self._port.getHost().port}"
        self.url = f"{where}/hooks?token=t0ps3cret"

    def stop(self):
        for request in self.hanging:
            if not request._disconnected:
                request.transport.abortConnection()
        return self._port.stopListening()

    def events(self, kind=None):
        """What was received (2xx), verified as an app would, as JSON: of C{kind}, or all."""
        verifier = Webhook(SECRET)
        found = []
        for headers, body in self.received:
            event = verifier.verify(body, headers)
            assert json.loads(body) == event
            if kind is None or event["type"] == kind:
                found.append(event)
        return found

    async def event(self, kind, count=1):
        """Wait (bounded) for C{count} events of C{kind}; return them."""
        await until(lambda: len(self.events(kind)) >= count)
        return self.events(kind)
