"""
The command line and the environment: precedence, defaults, and refusals
that name the culprit (issue: CLI over environment over defaults). What
twistd itself does with a bad setting: tests/system/test_twistd_refusals.py.
"""

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from aleatoria.daemon import config, settings, tap, values

ROOT = Path(__file__).parents[2]


def parse(argv, env=None, monkeypatch=None):
    for setting in settings.SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    options = tap.Options()
    options.parseOptions(argv)
    return options.config


def test_defaults(monkeypatch):
    """With nothing given: port 8085 on all interfaces, memory store, Go-like keepalive."""
    conf = parse([], monkeypatch=monkeypatch)
    assert conf == config.Config(
        port="tcp:8085", metrics_port="", demo=False, api_port="", api_token="",
        api_rate=50.0, api_burst=100, api_auth_failures=10,
        workers=1, allowed_origin=(), public_host=(),
        allow_no_origin=False,
        store="memory",
        history_size=1000, max_history_bytes=1073741824, message_ttl_hours=24,
        max_message_size=65536,
        anonymous=False, anonymous_secret="", anonymous_token_days=30, jwt_secret="",
        jwt_public_key_file="",
        jwt_audience="", jwt_issuer="",
        max_content_length=4096, max_rooms=50, presence_limit=100, signaling="any",
            call_grace=20.0,
        max_room_members=10000, max_rooms_total=100000,
        max_rooms_per_address=1000,
        stored_bytes_per_hour=2097152, address_stored_per_hour=10000,
        address_stored_bytes_per_hour=8388608, address_conversations_per_hour=1000,
        stored_per_hour=1000, conversations_per_hour=100, rate_limit=20.0,
        rate_burst=40, max_blocks=1000, skips_per_minute=30, rematch_after=300,
        reports_per_hour=20, report_ttl_hours=720,
        address_rate=200.0, address_burst=400, connect_rate=10.0, connect_burst=100,
        max_connections_per_ip=100, max_reads=8, max_reads_per_ip=64, trusted_proxy=(),
        handshake_timeout=10.0,
        outbound_stall=10.0, outbound_messages=4096, outbound_bytes=8388608,
        redis_host="localhost", redis_port=6379, redis_username="", redis_password="",
        redis_tls=False, redis_ca_file="", redis_db=0, redis_prefix="", redis_timeout=2.0,
        redis_retry_max=1.0, redis_sentinel=(), redis_sentinel_master="mymaster",
        redis_sentinel_password="", node_ttl=5.0, shutdown_timeout=5.0, log_format="text",
        sentry_dsn="",
        sentry_env="production", sentry_debug=False,
        sentry_sample_rate=1.0, sentry_release="",
        stun_url=(), turn_url=(), turn_secret="", turn_ttl=3600,
        webhook_url=(), webhook_secret="", webhook_retry_hours=1.0, webhook_queue=10000,
        ping_interval=54.0, idle_timeout=60.0,
    )


def test_command_line_wins_over_environment(monkeypatch):
    """A value on the command line beats the same setting's variable."""
    conf = parse(["--port", "9000", "--history-size", "7"],
                 {"ALEATORIA_PORT": "9001", "ALEATORIA_HISTORY_SIZE": "8",
                  "MESSAGE_TTL_HOURS": "2"}, monkeypatch)
    assert (conf.port, conf.history_size, conf.message_ttl_hours) == ("tcp:9000", 7, 2)


def test_endpoint_descriptions_pass_through(monkeypatch):
    """A --port that is not a bare number is a Twisted endpoint description."""
    conf = parse(["--port", "tcp:8085:interface=127.0.0.1"], monkeypatch=monkeypatch)
    assert conf.port == "tcp:8085:interface=127.0.0.1"


def test_origins_from_both_sources(monkeypatch):
    """--allowed-origin repeats; the variable is comma-separated; the CLI wins."""
    conf = parse([], {"ALEATORIA_ALLOWED_ORIGINS": "https://a.example, http://b.example:8080"},
                 monkeypatch)
    assert conf.allowed_origin == ("https://a.example", "http://b.example:8080")
    conf = parse(["--allowed-origin", "https://c.example", "--allowed-origin", "*"],
                 {"ALEATORIA_ALLOWED_ORIGINS": "https://a.example"}, monkeypatch)
    assert conf.allowed_origin == ("https://c.example", "*")


@pytest.mark.parametrize("env, flag, expected", [
    ({}, [], False),
    ({"ALEATORIA_ALLOW_NO_ORIGIN": "true"}, [], True),
    ({"ALEATORIA_ALLOW_NO_ORIGIN": "false"}, ["--allow-no-origin"], True),
])
def test_allow_no_origin(monkeypatch, env, flag, expected):
    """The flag, or its variable set to true, admits clients without an Origin."""
    assert parse(flag, env, monkeypatch).allow_no_origin is expected


@pytest.mark.parametrize("argv, env, culprit", [
    (["--port", "70000"], {}, "--port"),
    (["--port", "nonsense:1"], {}, "--port"),
    ([], {"ALEATORIA_PORT": ""}, "ALEATORIA_PORT"),
    ([], {"ALEATORIA_PORT": "xyz"}, "ALEATORIA_PORT='xyz'"),
    ([], {"ALEATORIA_METRICS_PORT": "xyz"}, "ALEATORIA_METRICS_PORT='xyz'"),
    (["--port", "xyz"], {"ALEATORIA_PORT": "9000"}, "--port='xyz'"),
    (["--history-size", "abc"], {}, "--history-size"),
    (["--history-size", "0"], {}, "--history-size"),
    ([], {"MESSAGE_TTL_HOURS": "-3"}, "MESSAGE_TTL_HOURS"),
    (["--store", "mongo"], {}, "--store"),
    ([], {"VALKEY_PORT": "abc"}, "VALKEY_PORT"),
    ([], {"REDIS_DB": "99"}, "REDIS_DB"),
    ([], {"VALKEY_HOST": " "}, "VALKEY_HOST"),
    ([], {"VALKEY_CA_FILE": "/nonexistent/ca.pem"}, "VALKEY_CA_FILE"),
    (["--redis-timeout", "-1"], {}, "--redis-timeout"),
    ([], {"SENTRY_SAMPLE_RATE": "2"}, "SENTRY_SAMPLE_RATE"),
    ([], {"SENTRY_DSN": "not-a-dsn"}, "SENTRY_DSN"),
    ([], {"SENTRY_DEBUG": "maybe"}, "SENTRY_DEBUG"),
    ([], {"ALEATORIA_STORE": "postgres"}, "ALEATORIA_STORE"),
    (["--allowed-origin", "ftp://x.example"], {}, "--allowed-origin"),
    ([], {"ALEATORIA_ALLOW_NO_ORIGIN": "perhaps"}, "ALEATORIA_ALLOW_NO_ORIGIN"),
    (["--ping-interval", "0"], {}, "--ping-interval"),
    (["--ping-interval", "60", "--idle-timeout", "30"], {}, "--idle-timeout"),
    (["--max-message-size", "10"], {}, "--max-message-size"),
    ([], {"ALEATORIA_LOG_FORMAT": "xml"}, "ALEATORIA_LOG_FORMAT"),
])
def test_bad_values_are_one_line_errors(monkeypatch, argv, env, culprit):
    """A bad value stops start-up with one line that names the option or variable."""
    with pytest.raises(SystemExit) as error:
        parse(argv, env, monkeypatch)
    message = str(error.value)
    assert message.startswith("aleatoria: ") and culprit in message and "\n" not in message


def test_redis_settings_as_operators_of_the_old_server_set_them(monkeypatch):
    """The Go server's variables configure the Redis store; VALKEY_HOST alone selects it."""
    conf = parse([], {"VALKEY_HOST": "cache.internal", "VALKEY_PORT": "6380",
                      "VALKEY_USERNAME": "chat", "VALKEY_PASSWORD": "s3cret",
                      "VALKEY_USE_TLS": "true", "REDIS_DB": "3"}, monkeypatch)
    assert (conf.store, conf.redis_host, conf.redis_port, conf.redis_username,
            conf.redis_password, conf.redis_tls, conf.redis_db) == (
        "redis", "cache.internal", 6380, "chat", "s3cret", True, 3)
    assert parse(["--store", "memory"], {"VALKEY_HOST": "x"}, monkeypatch).store == "memory"


def test_password_is_not_a_command_line_option(monkeypatch):
    """A password on the command line would show in ps: environment only."""
    with pytest.raises(SystemExit):
        parse(["--redis-password", "x"], {}, monkeypatch)


def test_every_setting_is_documented_in_the_configuration_reference():
    """
    The configuration reference's hand-written table (it was README.rst's)
    names every option and variable: not only the table generated from
    the settings.
    """
    from pathlib import Path

    reference = (Path(__file__).parents[2] / "docs/reference/configuration.rst").read_text()
    for setting in settings.SETTINGS:
        assert setting.env in reference, setting.env
        assert setting.env_only or f"--{setting.name}" in reference, setting.name


def test_rate_limit_is_not_called_seconds(monkeypatch):
    """--rate-limit counts messages a second; its refusal does not call it seconds."""
    with pytest.raises(SystemExit) as error:
        parse(["--rate-limit", "abc"], {}, monkeypatch)
    assert str(error.value) == "aleatoria: --rate-limit='abc': not a number of messages"


SECRETS = ("ALEATORIA_API_TOKEN", "ALEATORIA_ANONYMOUS_SECRET", "ALEATORIA_JWT_SECRET")


def documented_secrets():
    """
    Every value the documents show for a secret: assigned to a variable
    named for a token or a secret, or sent as a bearer token -- not what a
    shell expands, nor a placeholder (C{<...>}, C{...}).
    """
    found = set()
    for path in [ROOT / "README.rst", ROOT / "clients/js/README.md",
                 *ROOT.glob("docs/**/*.rst"), *ROOT.glob("systemd/*.example")]:
        text = path.read_text()
        found.update(re.findall(r"\b[A-Z_]*(?:TOKEN|SECRET)[A-Z_]*=[\"']?([^\s\"'$<`]+)", text))
        found.update(re.findall(r"Bearer ([^\s\"'$<`]+)", text))
    return {value for value in found if re.search(r"\w", value)}


@pytest.mark.parametrize("variable", SECRETS)
@pytest.mark.parametrize("value", ["hunter2", "a" * 31, "€" * 10,
                                   *sorted(values.DOCUMENTED_SECRETS)])
def test_a_weak_secret_is_refused(monkeypatch, variable, value):
    """
    Issue #22, item 5: start-up refuses an API token, anonymous secret or
    JWT secret shorter than 32 bytes (of UTF-8), or one the documents show
    as an example, with one line that names the variable and does not
    repeat the value.
    """
    with pytest.raises(SystemExit) as error:
        parse([], {variable: value}, monkeypatch)
    message = str(error.value)
    assert message.startswith(f"aleatoria: {variable}: ") and "\n" not in message, message
    assert value not in message.removeprefix(f"aleatoria: {variable}: ")


@pytest.mark.parametrize("variable", SECRETS)
def test_a_secret_of_32_bytes_is_taken(monkeypatch, variable):
    """32 bytes are enough, and the value is kept as given."""
    secret = "€" * 10 + "0123"
    assert len(secret.encode()) == 34
    conf = parse([], {variable: secret}, monkeypatch)
    assert getattr(conf, variable.removeprefix("ALEATORIA_").lower()) == secret


def test_every_secret_the_documents_show_is_refused():
    """
    Whatever value README.rst, docs/, the systemd examples or the
    client's README show for a secret is refused: too short, or listed in
    L{values.DOCUMENTED_SECRETS}.
    """
    shown = documented_secrets()
    assert "change-me" in values.DOCUMENTED_SECRETS
    for value in shown:
        with pytest.raises(values.SecretRefused):
            values.secret(value)


def test_sentinels_are_repeatable_and_select_redis(monkeypatch):
    """--redis-sentinel adds to the others (the variable is comma-separated); redis follows."""
    conf = parse(["--redis-sentinel", "10.0.0.5:26379", "--redis-sentinel", "[::1]:26380"],
                 {}, monkeypatch)
    assert conf.redis_sentinel == (("10.0.0.5", 26379), ("::1", 26380))
    assert conf.store == "redis" and conf.redis_sentinel_master == "mymaster"
    conf = parse([], {"ALEATORIA_REDIS_SENTINELS": "a:1, b:2",
                      "ALEATORIA_REDIS_SENTINEL_MASTER": "chat",
                      "ALEATORIA_REDIS_SENTINEL_PASSWORD": "s3cret"}, monkeypatch)
    assert conf.redis_sentinel == (("a", 1), ("b", 2))
    assert (conf.redis_sentinel_master, conf.redis_sentinel_password) == ("chat", "s3cret")


@pytest.mark.parametrize(("argv", "env", "named"), [
    (["--redis-sentinel", "a:1", "--redis-host", "x"], {}, "--redis-host"),
    ([], {"ALEATORIA_REDIS_SENTINELS": "a:1", "VALKEY_PORT": "7"}, "VALKEY_PORT"),
])
def test_sentinels_and_an_address_exclude_each_other(monkeypatch, argv, env, named):
    """The sentinels say where the primary is: an address beside them is one line, refused."""
    with pytest.raises(SystemExit) as error:
        parse(argv, env, monkeypatch)
    assert str(error.value).startswith(f"aleatoria: {named} and the sentinels")


def test_sentinels_are_refused_on_the_memory_store(monkeypatch):
    """Given and then ignored, they would leave an operator believing in a failover."""
    with pytest.raises(SystemExit) as error:
        parse(["--redis-sentinel", "a:1", "--store", "memory"], {}, monkeypatch)
    assert str(error.value).startswith("aleatoria: --redis-sentinel with --store memory")


def test_a_sentinel_is_host_and_port(monkeypatch):
    with pytest.raises(SystemExit) as error:
        parse(["--redis-sentinel", "a"], {}, monkeypatch)
    assert str(error.value) == "aleatoria: --redis-sentinel='a': not host:port: 'a'"


def test_the_config_class_declares_every_setting_in_order_with_its_type():
    """C{Config} is written out for readers and type checkers; the table is the source."""
    fields = dataclasses.fields(config.Config)
    assert [f.name for f in fields] == [s.name.replace("-", "_") for s in settings.SETTINGS]
    for field, setting in zip(fields, settings.SETTINGS, strict=True):
        assert (typing.get_origin(field.type) or field.type) is type(setting.default), field.name
