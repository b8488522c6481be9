"""
The STUN and TURN settings: repeatable options, comma-separated variables,
URLs checked at start-up with one line that names the option (issue #25).
"""

import pytest

from .test_options import parse

SECRET = "s" * 32


def test_repeated_options_and_the_variables_list(monkeypatch):
    """--turn-url and --stun-url add up; the variables are comma-separated lists."""
    conf = parse(["--turn-url", "turn:t.example.org:3478?transport=udp",
                  "--turn-url", "turns:t.example.org:443?transport=tcp",
                  "--stun-url", "stun:s.example.org", "--turn-ttl", "600"],
                 {"ALEATORIA_TURN_SECRET": SECRET}, monkeypatch)
    assert conf.turn_url == ("turn:t.example.org:3478?transport=udp",
                             "turns:t.example.org:443?transport=tcp")
    assert conf.stun_url == ("stun:s.example.org",)
    assert (conf.turn_secret, conf.turn_ttl) == (SECRET, 600)
    conf = parse([], {"ALEATORIA_TURN_URLS": "turn:[::1]:3478, turn:10.0.0.1",
                      "ALEATORIA_STUN_URLS": "stun:a.example:19302,stuns:b.example:5349",
                      "ALEATORIA_TURN_SECRET": SECRET}, monkeypatch)
    assert conf.turn_url == ("turn:[::1]:3478", "turn:10.0.0.1")
    assert conf.stun_url == ("stun:a.example:19302", "stuns:b.example:5349")


@pytest.mark.parametrize("argv, env, error", [
    (["--turn-url", "stun:t.example.org"], {"ALEATORIA_TURN_SECRET": SECRET},
     "aleatoria: --turn-url='stun:t.example.org': 'stun:t.example.org' is no turn: or "
     "turns: URL"),
    (["--stun-url", "https://s.example.org"], {},
     "aleatoria: --stun-url='https://s.example.org': 'https://s.example.org' is no stun: "
     "or stuns: URL"),
    (["--stun-url", "stun:s.example.org?transport=udp"], {},
     "aleatoria: --stun-url='stun:s.example.org?transport=udp': "
     "'stun:s.example.org?transport=udp': say stun:host[:port]"),
    ([], {"ALEATORIA_TURN_URLS": "turn:t.example.org:99999", "ALEATORIA_TURN_SECRET": SECRET},
     "aleatoria: ALEATORIA_TURN_URLS='turn:t.example.org:99999': "
     "'turn:t.example.org:99999': say turn:host[:port][?transport=udp|tcp]"),
    (["--turn-url", "turn:t.example.org?transport=sctp"], {"ALEATORIA_TURN_SECRET": SECRET},
     "aleatoria: --turn-url='turn:t.example.org?transport=sctp': "
     "'turn:t.example.org?transport=sctp': say turn:host[:port][?transport=udp|tcp]"),
    (["--turn-url", "turn:t.example.org"], {},
     "aleatoria: --turn-url needs ALEATORIA_TURN_SECRET, the TURN server's "
     "static-auth-secret (set in the environment only)"),
    ([], {"ALEATORIA_TURN_SECRET": "short"},
     "aleatoria: ALEATORIA_TURN_SECRET: has 5 bytes; a secret needs at least 32 (make one "
     "with openssl rand -hex 32)"),
    (["--turn-ttl", "10"], {}, "aleatoria: --turn-ttl='10': must be at least 60"),
    (["--turn-secret", SECRET], {}, "aleatoria: option --turn-secret not recognized"),
])
def test_bad_values_are_one_line_naming_the_setting(argv, env, error, monkeypatch):
    """Each refusal names the option or variable it came from, and what to write."""
    with pytest.raises(SystemExit) as refused:
        parse(argv, env, monkeypatch)
    assert str(refused.value) == error


WEBHOOK_SECRET = "whsec_" + "a2V5IGZvciB0aGUgd2ViaG9vayB0ZXN0cyAzMiBieXRlcw=="


def test_the_start_up_line_says_what_clients_are_given():
    """The summary names the STUN and TURN servers given out, and the credentials' life."""
    from twisted.logger import capturedLogs

    from aleatoria.daemon.announce import announce

    from ..support.servers import make_config

    with capturedLogs() as events:
        announce(make_config({"ALEATORIA_TURN_SECRET": SECRET}, **{
            "turn-url": "turn:t.example,turns:t.example:443", "stun-url": "stun:s.example"}))
    summary = events[0]["log_format"].format(**events[0])
    assert "; ICE 1 STUN and 2 TURN (credentials for 3600 s); webhooks off" in summary, summary


def test_the_start_up_line_says_what_is_set_and_what_goes_unused():
    """Webhooks and clients without an Origin are named; a TURN secret without TURN is told."""
    from twisted.logger import capturedLogs

    from aleatoria.daemon.announce import announce

    from ..support.servers import make_config

    with capturedLogs() as events:
        announce(make_config(
            {"ALEATORIA_TURN_SECRET": SECRET, "ALEATORIA_WEBHOOK_SECRET": WEBHOOK_SECRET},
            **{"webhook-url": "https://app.example/hooks", "allow-no-origin": True}))
    lines = [event["log_format"].format(**event) for event in events]
    assert "and clients that send none" in lines[0] and "webhooks to 1 URL(s)" in lines[0]
    assert "ALEATORIA_TURN_SECRET is set but no --turn-url" in "\n".join(lines[1:])
