"""The backend the settings ask for: the embedded one, or Redis (or Valkey)."""

from twisted.internet import endpoints, ssl

from aleatoria.memory.backend import MemoryBackend
from aleatoria.redis.backend import RedisBackend


def make_backend(config, reactor, report=None):
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
                        call_grace=config.call_grace)


def redis_link(config, reactor):
    """Where Redis is and how to log in: endpoint, C{host:port}, keywords."""
    return _redis_endpoint(config, reactor), f"{config.redis_host}:{config.redis_port}", dict(
        username=config.redis_username, password=config.redis_password,
        timeout=config.redis_timeout, retry_max=config.redis_retry_max,
    )


def _redis_endpoint(config, reactor):
    """Where Redis is: TLS-wrapped, verifying host name and certificate, if asked."""
    endpoint = endpoints.HostnameEndpoint(reactor, config.redis_host, config.redis_port)
    if not config.redis_tls:
        return endpoint
    trust = None
    if config.redis_ca_file:
        with open(config.redis_ca_file, "rb") as pem:
            trust = ssl.Certificate.loadPEM(pem.read())
    options = ssl.optionsForClientTLS(config.redis_host, trustRoot=trust)
    return endpoints.wrapClientTLS(options, endpoint)
