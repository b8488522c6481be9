"""
The sites of the daemon's ports: the clients' (C{/ws}, C{/health},
C{/ready}, C{/metrics}, the demo), the metrics' and the server API's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime

from aleatoria.domain.hub import Hub
from aleatoria.edge.admission import Gate
from aleatoria.http.channels import GatedSite, RequestSite
from aleatoria.http.pages import Health, Ready, Root, demo_pages
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.metrics import Metrics, MetricsPage
from aleatoria.redis.backend import RedisBackend

if TYPE_CHECKING:
    from aleatoria.http.api import ServerAPI
    from aleatoria.http.websocket import WebSocketEndpoint


def metrics_site(metrics: Metrics, reactor: IReactorTime, gate: Gate,
                 timeout: float) -> RequestSite:
    """C{/metrics} alone, for a port that only the monitoring can reach."""
    root = Root()
    root.putChild(b"metrics", MetricsPage(metrics))
    return RequestSite(root, gate, reactor=reactor, timeout=timeout)


def api_site(api: ServerAPI, reactor: IReactorTime, gate: Gate, timeout: float) -> RequestSite:
    """
    The server API, under C{/api/v1}, for a port of its own: C{api} (a
    L{aleatoria.http.api.ServerAPI}) screens each request that has a body when
    its head is in, and bounds the body.
    """
    root, versions = Root(), Root()
    root.putChild(b"api", versions)
    versions.putChild(b"v1", api)
    return RequestSite(root, gate, screen=api.screen, max_body=api.max_body,
                       too_large=api.too_large, reactor=reactor, timeout=timeout)


def make_site(websocket: WebSocketEndpoint, hub: Hub, backend: MemoryBackend | RedisBackend,
              metrics: Metrics | None, reactor: IReactorTime, handshake_timeout: float, gate: Gate,
              demo: bool = False) -> GatedSite:
    """
    The site on the clients' port (with C{/metrics}, unless C{metrics} is
    C{None}: served on a port of its own; with the demo app at C{/} if
    C{demo}). Its idle timeout is the handshake timeout: a client that
    never completes a request is cut off, while an upgraded WebSocket (a
    request that never completes) is not affected.
    """
    root = Root()
    if demo:
        for name, page in demo_pages().items():
            root.putChild(name, page)
    root.putChild(b"ws", websocket)
    if metrics is not None:
        root.putChild(b"metrics", MetricsPage(metrics))
    root.putChild(b"health", Health())
    root.putChild(b"ready", Ready(hub, backend, reactor))
    return GatedSite(root, gate, upgrade=websocket, reactor=reactor, timeout=handshake_timeout)
