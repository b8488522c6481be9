"""What a starting daemon says: how it is set up, and what an operator would not leave so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from aleatoria import __version__

if TYPE_CHECKING:
    from aleatoria.daemon.config import Config

_log = Logger(namespace="aleatoria.daemon.service")


def announce(config: Config) -> None:
    """
    One line that says what is starting and how it is set up, and one
    warning for each setting an operator would not want left as it is.
    """
    if config.store == "redis":
        where = f"at {config.redis_host}:{config.redis_port}"
        if config.redis_sentinel:
            where = (f"primary {config.redis_sentinel_master!r} of the sentinels at "
                     + ", ".join(f"{host}:{port}" for host, port in config.redis_sentinel))
        store = (f"Redis {where}"
                 f"{' (TLS)' if config.redis_tls else ''}, shared with other daemons")
    else:
        store = "memory (this daemon alone)"
    tokens = bool(config.jwt_secret or config.jwt_public_key_file)
    if tokens:
        identity = "JWT"
    elif config.anonymous:
        identity = "named by the server (--anonymous)"
    else:
        identity = "the userId asked for"
    origins = ", ".join(config.allowed_origin) or "own origin" + (
        f" ({', '.join(config.public_host)})" if config.public_host else " (loopback only)")
    if config.allow_no_origin:
        origins += ", and clients that send none"
    _log.info(
        "Aleatoria {version} starting on {port}: store {store}; identity {identity}; "
        "origins {origins}; limits {rate}/s (burst {burst}) messages, {content} B content, "
        "{size} B frames, {rooms} rooms, {per_address} connections per address; "
        "history {history} per stream for {ttl} h; Sentry {sentry}; server API {api}; "
        "ICE {ice}; webhooks {webhooks}",
        version=__version__, port=config.port, store=store, identity=identity,
        origins=origins, rate=config.rate_limit, burst=config.rate_burst,
        content=config.max_content_length, size=config.max_message_size,
        rooms=config.max_rooms, per_address=config.max_connections_per_ip,
        history=config.history_size, ttl=config.message_ttl_hours,
        sentry="on" if config.sentry_dsn else "off",
        api=f"on {config.api_port}" if config.api_port else "off",
        ice=_ice(config),
        webhooks=f"to {len(config.webhook_url)} URL(s)" if config.webhook_url else "off",
    )
    if config.turn_secret and not config.turn_url:
        _log.warn("ALEATORIA_TURN_SECRET is set but no --turn-url: clients get no TURN server")
    if not config.allowed_origin and not config.public_host:
        _log.warn(
            "Neither --allowed-origin nor --public-host is set: only pages served "
            "from this machine (loopback) may open /ws"
        )
    if config.anonymous and not config.anonymous_secret:
        _log.warn(
            "--anonymous without ALEATORIA_ANONYMOUS_SECRET: reconnect tokens are signed "
            "with a random key, good only until this daemon stops (its workers share it; "
            "not after a restart, nor on another daemon)"
        )
    if not tokens and not config.anonymous:
        _log.warn(
            "No ALEATORIA_JWT_SECRET or --jwt-public-key-file: every client is who its "
            "userId says, and may connect as anybody (closing that user's connection)"
        )


def _ice(config: Config) -> str:
    """The ICE servers clients are given, in brief."""
    given = [f"{len(config.stun_url)} STUN"] if config.stun_url else []
    if config.turn_url:
        given.append(f"{len(config.turn_url)} TURN (credentials for {config.turn_ttl} s)")
    return " and ".join(given) or "none (calls connect only where both NATs allow)"
