"""
The daemon's settings resolved from the table of
L{aleatoria.daemon.settings}: the command line wins over the environment, the
environment over the default; a bad value is refused at start-up with a
sentence that names where it came from.
"""


from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from aleatoria.daemon.settings import SETTINGS
from aleatoria.daemon.values import SecretRefused
from aleatoria.edge.origins import OriginPolicy


class ConfigError(ValueError):
    """A setting's value is unusable; the text names the setting."""


@dataclass(frozen=True)
class Config:
    """
    The daemon's settings, resolved: one field per entry of
    L{aleatoria.daemon.settings.SETTINGS}, named as its option with
    underscores, in the same order (C{tests/unit/test_options.py} checks that
    they agree, types included).
    """

    port: str
    metrics_port: str
    demo: bool
    api_port: str
    api_token: str
    api_rate: float
    api_burst: int
    api_auth_failures: int
    workers: int
    allowed_origin: tuple[str, ...]
    public_host: tuple[str, ...]
    allow_no_origin: bool
    store: str
    history_size: int
    max_history_bytes: int
    message_ttl_hours: int
    max_message_size: int
    anonymous: bool
    anonymous_secret: str
    anonymous_token_days: int
    jwt_secret: str
    jwt_public_key_file: str
    jwt_audience: str
    jwt_issuer: str
    max_content_length: int
    max_rooms: int
    max_room_members: int
    max_rooms_total: int
    max_rooms_per_address: int
    presence_limit: int
    max_blocks: int
    skips_per_minute: int
    rematch_after: int
    reports_per_hour: int
    report_ttl_hours: int
    signaling: str
    call_grace: float
    rate_limit: float
    rate_burst: int
    stored_per_hour: int
    conversations_per_hour: int
    stored_bytes_per_hour: int
    address_stored_per_hour: int
    address_stored_bytes_per_hour: int
    address_conversations_per_hour: int
    address_rate: float
    address_burst: int
    connect_rate: float
    connect_burst: int
    max_connections_per_ip: int
    max_reads: int
    max_reads_per_ip: int
    trusted_proxy: tuple[IPv4Network | IPv6Network, ...]
    handshake_timeout: float
    outbound_stall: float
    outbound_messages: int
    outbound_bytes: int
    redis_host: str
    redis_port: int
    redis_username: str
    redis_password: str
    redis_tls: bool
    redis_ca_file: str
    redis_db: int
    redis_prefix: str
    redis_timeout: float
    redis_retry_max: float
    redis_sentinel: tuple[tuple[str, int], ...]
    redis_sentinel_master: str
    redis_sentinel_password: str
    node_ttl: float
    shutdown_timeout: float
    log_format: str
    sentry_dsn: str
    sentry_env: str
    sentry_debug: bool
    sentry_sample_rate: float
    sentry_release: str
    stun_url: tuple[str, ...]
    turn_url: tuple[str, ...]
    turn_secret: str
    turn_ttl: int
    webhook_url: tuple[str, ...]
    webhook_secret: str
    webhook_retry_hours: float
    webhook_queue: int
    ping_interval: float
    idle_timeout: float

    def origin_policy(self) -> OriginPolicy:
        return OriginPolicy(self.allowed_origin, self.allow_no_origin, self.public_host)


def resolve(given: Mapping[str, object], environ: Mapping[str, str]) -> Config:
    """
    Build the L{Config} from command-line values (C{given}: setting name ->
    raw text, or C{None} when not given; typed values pass through) and the
    environment.

    @raise ConfigError: a value is unusable.
    """
    values: dict[str, Any] = {}  # each setting of its own type: what its parser gives
    for setting in SETTINGS:
        raw, source = given.get(setting.name), f"--{setting.name}"
        if raw is None and setting.env in environ:
            raw, source = environ[setting.env], setting.env
        if raw is None:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = raw if not isinstance(raw, str) else setting.parse(raw)
        except SecretRefused as e:
            raise ConfigError(f"{source}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"{source}={raw!r}: {e}") from None
    if given.get("store") is None and "ALEATORIA_STORE" not in environ:
        if "VALKEY_HOST" in environ or values["redis-sentinel"]:
            values["store"] = "redis"
    config = Config(**{k.replace("-", "_"): v for k, v in values.items()})
    if config.redis_sentinel:
        _where_or_sentinels(given, environ)
        if config.store != "redis":
            raise ConfigError(
                f"--redis-sentinel with --store {config.store}: the sentinels name a Redis "
                "primary; use --store redis (the default when sentinels are given)"
            )
    if config.jwt_secret and config.jwt_public_key_file:
        raise ConfigError(
            "ALEATORIA_JWT_SECRET and --jwt-public-key-file exclude each other: choose one"
        )
    if config.anonymous and (config.jwt_secret or config.jwt_public_key_file):
        raise ConfigError(
            "--anonymous and JWT (ALEATORIA_JWT_SECRET, --jwt-public-key-file) exclude "
            "each other: choose one"
        )
    if config.api_port and not config.api_token:
        raise ConfigError(
            f"--api-port={config.api_port!r} needs ALEATORIA_API_TOKEN, the bearer token "
            "of the server API (set in the environment only)"
        )
    if config.workers > 1 and config.store != "redis":
        raise ConfigError(
            f"--workers {config.workers} needs --store redis: workers share sessions, "
            "rooms and the pool through Redis"
        )
    if config.turn_url and not config.turn_secret:
        raise ConfigError(
            "--turn-url needs ALEATORIA_TURN_SECRET, the TURN server's static-auth-secret "
            "(set in the environment only)"
        )
    if config.webhook_url and not config.webhook_secret:
        raise ConfigError(
            "--webhook-url needs ALEATORIA_WEBHOOK_SECRET, the key webhooks are signed "
            "with (set in the environment only)"
        )
    if config.idle_timeout <= config.ping_interval:
        raise ConfigError("--idle-timeout must be longer than --ping-interval")
    return config


def _where_or_sentinels(given: Mapping[str, object], environ: Mapping[str, str]) -> None:
    """The sentinels say where the primary is: an address given beside them is refused."""
    for name, variable in (("redis-host", "VALKEY_HOST"), ("redis-port", "VALKEY_PORT")):
        source = f"--{name}" if given.get(name) is not None else (
            variable if variable in environ else None)
        if source:
            raise ConfigError(
                f"{source} and the sentinels (--redis-sentinel, ALEATORIA_REDIS_SENTINELS) "
                "exclude each other: the sentinels say where the primary is"
            )
