"""The backend the settings ask for: the embedded one, or Redis (or Valkey)."""

from __future__ import annotations

from functools import partial

from twisted.internet import endpoints, ssl
from twisted.internet.interfaces import IStreamClientEndpoint

from aleatoria.daemon.config import Config
from aleatoria.daemon.lifecycle import Reactor
from aleatoria.memory.backend import MemoryBackend
from aleatoria.ops.reporting import Report
from aleatoria.redis.backend import RedisBackend
from aleatoria.redis.link import LinkPlace
from aleatoria.redis.sentinel import Sentinels


def make_backend(config: Config, reactor: Reactor,
                 report: Report | None = None) -> MemoryBackend | RedisBackend:
    """
    The configured backend, as a service to start and stop with the
    daemon; C{report} (the daemon's Report) hears of its troubles.
    """
    ttl = config.message_ttl_hours * 3600
    if config.store == "memory":
        return MemoryBackend(reactor, ttl, config.history_size,
                             max_bytes=config.max_history_bytes, call_grace=config.call_grace)
    return RedisBackend(redis_link(config, reactor), reactor, ttl=ttl,
                        history_size=config.history_size, node_ttl=config.node_ttl,
                        prefix=config.redis_prefix, db=config.redis_db,
                        max_bytes=config.max_history_bytes, report=report,
                        call_grace=config.call_grace,

                        sentinels=sentinels(config, reactor))


def redis_link(config: Config, reactor: Reactor) -> LinkPlace:
    """
    Where Redis is and how to log in: endpoint, C{host:port}, keywords;
    behind sentinels no endpoint (theirs ask them at every attempt).
    """
    options = dict(username=config.redis_username, password=config.redis_password,
                   timeout=config.redis_timeout, retry_max=config.redis_retry_max)
    if config.redis_sentinel:
        where = ", ".join(f"{host}:{port}" for host, port in config.redis_sentinel)
        return None, where, options
    endpoint = _redis_endpoint(config, reactor, config.redis_host, config.redis_port)
    return endpoint, f"{config.redis_host}:{config.redis_port}", options


def sentinels(config: Config, reactor: Reactor) -> Sentinels | None:
    """The sentinels that name the primary, if the settings give any."""
    if not config.redis_sentinel:
        return None
    return Sentinels(config.redis_sentinel, config.redis_sentinel_master, reactor,
                     partial(_redis_endpoint, config, reactor),
                     password=config.redis_sentinel_password or None,
                     timeout=config.redis_timeout, retry_max=config.redis_retry_max)


def _redis_endpoint(config: Config, reactor: Reactor, host: str,
                    port: int) -> IStreamClientEndpoint:
    """
    An endpoint to a Redis (or a sentinel): TLS-wrapped, verifying host
    name and certificate, if asked; connecting for at most the command
    timeout (an unreachable host must not hold a failover up for 30 s).
    """
    endpoint = endpoints.HostnameEndpoint(reactor, host, port, timeout=config.redis_timeout)
    if not config.redis_tls:
        return endpoint
    trust = None
    if config.redis_ca_file:
        with open(config.redis_ca_file, "rb") as pem:
            trust = ssl.Certificate.loadPEM(pem.read())
    options = ssl.optionsForClientTLS(host, trustRoot=trust)
    return endpoints.wrapClientTLS(options, endpoint)
