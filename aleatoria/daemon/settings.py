"""
The table of every setting of the daemon: its option, its environment
variable, its default, how a value is checked, and what it means.

One table serves the command line, the environment, the systemd
example and the docs' configuration reference, so they cannot
drift apart (L{aleatoria.daemon.config} resolves it).
"""

from collections.abc import Callable
from dataclasses import dataclass

from aleatoria.daemon import values


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: object
    parse: Callable[[str], object]
    help: str
    env_only: bool = False
    """
    No command-line option: secrets (on a command line they show in C{ps})
    and the Sentry settings, which operators of the old server set in the
    environment.
    """


SETTINGS = (
    Setting("port", "ALEATORIA_PORT", "tcp:8085", values.port,
            "Port number (all interfaces) or Twisted endpoint, e.g. "
            "tcp:8085:interface=127.0.0.1"),
    Setting("metrics-port", "ALEATORIA_METRICS_PORT", "", values.optional_port,
            "Serve /metrics on this port or endpoint (e.g. tcp:9100:interface=10.0.0.5) "
            "instead of the clients' port; empty: on the clients' port"),
    Setting("demo", "ALEATORIA_DEMO", False, values.flag,
            "Serve the demo app (random video chat, rooms, direct messages) at /"),
    Setting("api-port", "ALEATORIA_API_PORT", "", values.optional_port,
            "Serve the server API (/api/v1) on this port or endpoint, e.g. "
            "tcp:8086:interface=127.0.0.1; needs ALEATORIA_API_TOKEN; empty: no API"),
    Setting("api-token", "ALEATORIA_API_TOKEN", "", values.secret,
            "The bearer token the server API asks of every request (at least 32 bytes)",
            env_only=True),
    Setting("api-rate", "ALEATORIA_API_RATE", 50.0,
            values.number(0, what="a number of requests"),
            "Server API requests a second one client address may make, on average"),
    Setting("api-burst", "ALEATORIA_API_BURST", 100, values.whole(1),
            "Server API requests one client address may make at once"),
    Setting("api-auth-failures", "ALEATORIA_API_AUTH_FAILURES", 10, values.whole(1),
            "Failed authentications one client address may make on the server API a "
            "minute, all at once if it likes; past them 429, the token not even compared"),
    Setting("workers", "ALEATORIA_WORKERS", 1, values.whole_between(1, 64),
            "Processes serving the port, sharing it and the Redis store (one per "
            "core); more than 1 needs --store redis"),
    Setting("allowed-origin", "ALEATORIA_ALLOWED_ORIGINS", (), values.origins,
            "Web origin allowed to connect (repeatable; the variable is "
            "comma-separated); * allows any. Default: the daemon's own origin"),
    Setting("public-host", "ALEATORIA_PUBLIC_HOSTS", (), values.host_names,
            "Host name the daemon is reached by (repeatable; the variable is "
            "comma-separated): with no --allowed-origin, pages of that origin "
            "may connect; without it, only pages on loopback"),
    Setting("allow-no-origin", "ALEATORIA_ALLOW_NO_ORIGIN", False, values.flag,
            "Accept clients that send no Origin header (native apps)"),
    Setting("store", "ALEATORIA_STORE", "memory", values.choice("memory", "redis"),
            "Where rooms, history and the pool live: memory or redis "
            "(default redis when VALKEY_HOST or ALEATORIA_REDIS_SENTINELS is set)"),
    Setting("history-size", "ALEATORIA_HISTORY_SIZE", 1000, values.whole(1),
            "Messages kept per room and per direct-message pair"),
    Setting("max-history-bytes", "ALEATORIA_MAX_HISTORY_BYTES", 1024**3, values.whole(1),
            "Bytes of kept messages (on Redis: Redis's used memory, weighed every "
            "5 s) past which the history streams written longest ago are evicted; "
            "chat is refused (quota_exceeded) only when none is left"),
    Setting("message-ttl-hours", "MESSAGE_TTL_HOURS", 24, values.whole(1),
            "Hours a history lives after its last message"),
    Setting("max-message-size", "ALEATORIA_MAX_MESSAGE_SIZE", 65536, values.whole(1024),
            "Largest WebSocket message in bytes; larger ones close with 1009"),
    Setting("anonymous", "ALEATORIA_ANONYMOUS", False, values.flag,
            "The server names each new client and gives it a signed reconnect token "
            "(in a welcome message); clients send no userId"),
    Setting("anonymous-secret", "ALEATORIA_ANONYMOUS_SECRET", "", values.secret,
            "Key that signs reconnect tokens, the same on every daemon, at least 32 bytes "
            "(default: random, good until this daemon stops; its --workers share it)",
            env_only=True),
    Setting("anonymous-token-days", "ALEATORIA_ANONYMOUS_TOKEN_DAYS", 30,
            values.whole_between(1, 3650),
            "Days a reconnect token is good for after it was issued (each connection "
            "gets a fresh one); then it is refused (401) and the client starts afresh"),
    Setting("jwt-secret", "ALEATORIA_JWT_SECRET", "", values.secret,
            "HS256 secret, at least 32 bytes: clients must present a token (environment only)",
            env_only=True),
    Setting("jwt-public-key-file", "ALEATORIA_JWT_PUBLIC_KEY_FILE", "", values.readable_file,
            "PEM public key (RS256/ES256): clients must present a token"),
    Setting("jwt-audience", "ALEATORIA_JWT_AUDIENCE", "", values.text,
            "The aud a token must carry, if set"),
    Setting("jwt-issuer", "ALEATORIA_JWT_ISSUER", "", values.text,
            "The iss a token must carry, if set"),
    Setting("max-content-length", "ALEATORIA_MAX_CONTENT_LENGTH", 4096, values.whole(1),
            "Longest chat message, in bytes of UTF-8; longer ones get error too_large"),
    Setting("max-rooms", "ALEATORIA_MAX_ROOMS", 50, values.whole(1),
            "Rooms one connection may be in at once"),
    Setting("max-room-members", "ALEATORIA_MAX_ROOM_MEMBERS", 10000, values.whole(1),
            "Members a room may have (on one daemon); join_room past it: quota_exceeded"),
    Setting("max-rooms-total", "ALEATORIA_MAX_ROOMS_TOTAL", 100000, values.whole(1),
            "Rooms with members there may be (on one daemon); joining a new one past "
            "it: quota_exceeded"),
    Setting("max-rooms-per-address", "ALEATORIA_MAX_ROOMS_PER_ADDRESS", 1000, values.whole(1),
            "Rooms the users of one client address may have opened (joined while empty, "
            "on one daemon) that have members still; opening one more: quota_exceeded"),
    Setting("presence-limit", "ALEATORIA_PRESENCE_LIMIT", 100, values.whole(0),
            "Members of a room (on one daemon) up to which they hear each other "
            "join and leave; in larger rooms, get_room_members pages through them"),
    Setting("max-blocks", "ALEATORIA_MAX_BLOCKS", 1000, values.whole(1),
            "Users one user may block (block_user); past it, quota_exceeded"),
    Setting("skips-per-minute", "ALEATORIA_SKIPS_PER_MINUTE", 30, values.whole(0),
            "request_random_peer one user may send a minute, on any daemon; past it, "
            "rate_limited; 0: no limit"),
    Setting("rematch-after", "ALEATORIA_REMATCH_AFTER", 300, values.whole(0),
            "Seconds after two users' match ends during which they are not paired "
            "again; 0: they may be at once"),
    Setting("reports-per-hour", "ALEATORIA_REPORTS_PER_HOUR", 20, values.whole(1),
            "Reports one user may file an hour (report_user); past it, rate_limited"),
    Setting("report-ttl-hours", "ALEATORIA_REPORT_TTL_HOURS", 720, values.whole(1),
            "Hours a report is kept for the server API to read"),
    Setting("signaling", "ALEATORIA_SIGNALING", "any", values.choice("any", "matched"),
            "Who may send WebRTC signaling to whom: any (but a user in a call hears "
            "only its partner) or matched (only the two users of a pairing)"),
    Setting("call-grace", "ALEATORIA_CALL_GRACE", 20.0,
            values.number(0, low_allowed=True, what="a number of seconds"),
            "Seconds a call is held for a user whose connection was lost (not "
            "closed by the client): back within them, on any daemon, it goes on; "
            "0: a lost connection ends the call at once"),
    Setting("rate-limit", "ALEATORIA_RATE_LIMIT", 20.0,
            values.number(0, what="a number of messages"),
            "Messages a second one connection may send, on average"),
    Setting("rate-burst", "ALEATORIA_RATE_BURST", 40, values.whole(1),
            "Messages one connection may send at once; past the rate and this, "
            "error rate_limited, and as many refusals in a row close it (1008)"),
    Setting("stored-per-hour", "ALEATORIA_STORED_PER_HOUR", 1000, values.whole(1),
            "Chat messages one user may have stored (room history, direct messages) "
            "an hour, all at once if it likes; past it, quota_exceeded"),
    Setting("conversations-per-hour", "ALEATORIA_CONVERSATIONS_PER_HOUR", 100, values.whole(1),
            "Users one user may start writing direct messages to in an hour; past "
            "it, quota_exceeded"),
    Setting("stored-bytes-per-hour", "ALEATORIA_STORED_BYTES_PER_HOUR", 2 * 1024 * 1024,
            values.whole(1),
            "Bytes of chat messages (each weighed encoded, once) one user may have stored "
            "an hour; past it, quota_exceeded"),
    Setting("address-stored-per-hour", "ALEATORIA_ADDRESS_STORED_PER_HOUR", 10000,
            values.whole(1),
            "Chat messages all the users of one client address may have stored an hour, "
            "unless ids come from tokens (JWT); past it, quota_exceeded"),
    Setting("address-stored-bytes-per-hour", "ALEATORIA_ADDRESS_STORED_BYTES_PER_HOUR",
            8 * 1024 * 1024, values.whole(1),
            "Bytes of chat messages all the users of one client address may have stored "
            "an hour, unless ids come from tokens (JWT); past it, quota_exceeded"),
    Setting("address-conversations-per-hour", "ALEATORIA_ADDRESS_CONVERSATIONS_PER_HOUR",
            1000, values.whole(1),
            "Users all the users of one client address may start writing direct messages "
            "to in an hour, unless ids come from tokens (JWT); past it, quota_exceeded"),
    Setting("address-rate", "ALEATORIA_ADDRESS_RATE", 200.0,
            values.number(0, what="a number of messages"),
            "Messages a second all the users of one client address may send together, "
            "on average"),
    Setting("address-burst", "ALEATORIA_ADDRESS_BURST", 400, values.whole(1),
            "Messages all the users of one client address may send at once; past the "
            "rate and this, rate_limited"),
    Setting("connect-rate", "ALEATORIA_CONNECT_RATE", 10.0,
            values.number(0, what="a number of connections"),
            "Connection attempts a second one client address may make, on average"),
    Setting("connect-burst", "ALEATORIA_CONNECT_BURST", 100, values.whole(1),
            "Connection attempts one client address may make at once; past the "
            "rate and this, HTTP 429"),
    Setting("max-connections-per-ip", "ALEATORIA_MAX_CONNECTIONS_PER_IP", 100, values.whole(1),
            "Open connections one client address may have; more are refused (429)"),
    Setting("max-reads", "ALEATORIA_MAX_READS", 8, values.whole(1),
            "Requests that read the store (history, members, conversations, mark_read, "
            "resume) one user may have under way; past it, rate_limited"),
    Setting("max-reads-per-ip", "ALEATORIA_MAX_READS_PER_IP", 64, values.whole(1),
            "Requests that read the store all the users of one client address may "
            "have under way; past it, rate_limited"),
    Setting("trusted-proxy", "ALEATORIA_TRUSTED_PROXIES", (), values.networks,
            "Proxy address or network whose X-Forwarded-For is believed "
            "(repeatable; the variable is comma-separated)"),
    Setting("handshake-timeout", "ALEATORIA_HANDSHAKE_TIMEOUT", 10.0, values.seconds,
            "Seconds a client has to finish the WebSocket handshake"),
    Setting("outbound-stall", "ALEATORIA_OUTBOUND_STALL", 10.0, values.seconds,
            "Seconds a client's queue of messages may go without shrinking before the "
            "client is dropped as not reading"),
    Setting("outbound-messages", "ALEATORIA_OUTBOUND_MESSAGES", 4096, values.whole(1),
            "Messages that may wait for a client, however it reads; past this (or "
            "--outbound-bytes) it is dropped"),
    Setting("outbound-bytes", "ALEATORIA_OUTBOUND_BYTES", 8 * 1024 * 1024, values.whole(65536),
            "Bytes that may wait for a client, however it reads"),
    Setting("redis-host", "VALKEY_HOST", "localhost", values.host,
            "Redis/Valkey host"),
    Setting("redis-port", "VALKEY_PORT", 6379, values.whole_between(1, 65535),
            "Redis/Valkey port"),
    Setting("redis-username", "VALKEY_USERNAME", "", values.text,
            "ACL user name (empty: the default user)"),
    Setting("redis-password", "VALKEY_PASSWORD", "", values.text,
            "Password (environment only)", env_only=True),
    Setting("redis-tls", "VALKEY_USE_TLS", False, values.flag,
            "Connect with TLS, verifying the server certificate and host name"),
    Setting("redis-ca-file", "VALKEY_CA_FILE", "", values.readable_file,
            "PEM CA bundle to verify the server with (default: the system's)"),
    Setting("redis-db", "REDIS_DB", 0, values.whole_between(0, 15),
            "Database number, 0-15"),
    Setting("redis-prefix", "ALEATORIA_REDIS_PREFIX", "", values.text,
            "Prefix for every key, to share a database"),
    Setting("redis-timeout", "ALEATORIA_REDIS_TIMEOUT", 2.0, values.seconds,
            "Seconds before a Redis command, or the connect handshake, is given up"),
    Setting("redis-retry-max", "ALEATORIA_REDIS_RETRY_MAX", 1.0, values.seconds,
            "Longest wait, in seconds, between attempts to reconnect to Redis"),
    Setting("redis-sentinel", "ALEATORIA_REDIS_SENTINELS", (), values.addresses,
            "Sentinel (host:port) to ask where the Redis primary is, instead of "
            "--redis-host and --redis-port (repeatable; the variable is comma-separated); "
            "the daemon follows the primary through failovers"),
    Setting("redis-sentinel-master", "ALEATORIA_REDIS_SENTINEL_MASTER", "mymaster", values.host,
            "The name the sentinels know the primary by"),
    Setting("redis-sentinel-password", "ALEATORIA_REDIS_SENTINEL_PASSWORD", "", values.text,
            "The sentinels' own password (environment only; the data password is "
            "VALKEY_PASSWORD)", env_only=True),
    Setting("node-ttl", "ALEATORIA_NODE_TTL", 5.0, values.seconds,
            "Seconds after its last heartbeat that a daemon sharing the Redis "
            "counts as dead, and its users as gone (it beats 5 times as often)"),
    Setting("shutdown-timeout", "ALEATORIA_SHUTDOWN_TIMEOUT", 5.0, values.seconds,
            "Seconds a stopping daemon has to close its clients and release "
            "their sessions; past them the other daemons reap what is left"),
    Setting("log-format", "ALEATORIA_LOG_FORMAT", "text", values.choice("text", "json"),
            "The log: text (twistd's lines) or json (one object per line, for "
            "journald and log shippers)"),
    Setting("sentry-dsn", "SENTRY_DSN", "", values.dsn,
            "Where to report errors; empty turns reporting off", env_only=True),
    Setting("sentry-env", "SENTRY_ENV", "production", values.host,
            "Sentry environment", env_only=True),
    Setting("sentry-debug", "SENTRY_DEBUG", False, values.flag,
            "Let the Sentry SDK log what it does", env_only=True),
    Setting("sentry-sample-rate", "SENTRY_SAMPLE_RATE", 1.0, values.number(0, 1, low_allowed=True),
            "Share of client messages traced (0-1)", env_only=True),
    Setting("sentry-release", "SENTRY_RELEASE", "", values.text,
            "Release reported to Sentry (default: aleatoria@<version>)", env_only=True),
    Setting("stun-url", "ALEATORIA_STUN_URLS", (), values.ice_urls("stun", "stuns"),
            "STUN server clients may use for calls, e.g. stun:stun.example.org:3478 "
            "(repeatable; the variable is comma-separated)"),
    Setting("turn-url", "ALEATORIA_TURN_URLS", (), values.ice_urls("turn", "turns"),
            "TURN server clients may relay calls through, e.g. "
            "turn:turn.example.org:3478?transport=udp (repeatable; the variable is "
            "comma-separated); needs ALEATORIA_TURN_SECRET"),
    Setting("turn-secret", "ALEATORIA_TURN_SECRET", "", values.secret,
            "The TURN server's static-auth-secret, at least 32 bytes: the daemon mints "
            "time-limited credentials with it (environment only)", env_only=True),
    Setting("turn-ttl", "ALEATORIA_TURN_TTL", 3600, values.whole_between(60, 7 * 86400),
            "Seconds the TURN credentials the daemon gives out are good for"),
    Setting("webhook-url", "ALEATORIA_WEBHOOK_URLS", (), values.urls,
            "URL the app's backend receives events at, POSTed as signed JSON "
            "(repeatable; the variable is comma-separated); none: no webhooks"),
    Setting("webhook-secret", "ALEATORIA_WEBHOOK_SECRET", "", values.webhook_secret,
            "Key that signs webhooks, whsec_ and base64 of 24-64 random bytes, as "
            "Standard Webhooks libraries make it (environment only)", env_only=True),
    Setting("webhook-retry-hours", "ALEATORIA_WEBHOOK_RETRY_HOURS", 1.0,
            values.number(0, what="a number of hours"),
            "Hours a webhook is retried (backing off up to 5 minutes between tries) "
            "before it is dropped, counted and logged"),
    Setting("webhook-queue", "ALEATORIA_WEBHOOK_QUEUE", 10000, values.whole(1),
            "Webhooks that may wait for each URL; past it new ones are dropped, "
            "counted and logged"),
    Setting("ping-interval", "ALEATORIA_PING_INTERVAL", 54.0, values.seconds,
            "Seconds between keepalive pings"),
    Setting("idle-timeout", "ALEATORIA_IDLE_TIMEOUT", 60.0, values.seconds,
            "Seconds after its last pong at which a silent client is dropped"),
)

FLAGS = ("allow-no-origin", "redis-tls", "anonymous", "demo")
"""Settings that take no value on the command line."""
