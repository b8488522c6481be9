"""
The webhook settings (issue #24, section 5): the URLs from the command line
or the environment, the signing key from the environment only, and the
refusals that name the culprit without repeating a secret.
"""

import base64

import pytest

from .test_options import parse

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_urls_repeat_and_the_variable_is_comma_separated(monkeypatch):
    """--webhook-url repeats; ALEATORIA_WEBHOOK_URLS is comma-separated; the CLI wins."""
    env = {"ALEATORIA_WEBHOOK_SECRET": SECRET,
           "ALEATORIA_WEBHOOK_URLS": "https://a.example/hook, http://10.0.0.5:8000/in"}
    conf = parse([], env, monkeypatch)
    assert conf.webhook_url == ("https://a.example/hook", "http://10.0.0.5:8000/in")
    assert conf.webhook_secret == SECRET
    conf = parse(["--webhook-url", "https://c.example/", "--webhook-url", "http://d.example/x",
                  "--webhook-retry-hours", "0.5", "--webhook-queue", "7"], env, monkeypatch)
    assert conf.webhook_url == ("https://c.example/", "http://d.example/x")
    assert (conf.webhook_retry_hours, conf.webhook_queue) == (0.5, 7)


def test_the_secret_is_environment_only(monkeypatch):
    """A signing key on the command line would show in ps."""
    with pytest.raises(SystemExit):
        parse(["--webhook-secret", SECRET], {}, monkeypatch)


@pytest.mark.parametrize("argv, env, culprit", [
    (["--webhook-url", "ftp://x.example/"], {"ALEATORIA_WEBHOOK_SECRET": SECRET},
     "--webhook-url"),
    ([], {"ALEATORIA_WEBHOOK_URLS": "https:///nohost", "ALEATORIA_WEBHOOK_SECRET": SECRET},
     "ALEATORIA_WEBHOOK_URLS"),
    (["--webhook-url", "https://x.example/"], {}, "needs ALEATORIA_WEBHOOK_SECRET"),
    (["--webhook-queue", "0"], {}, "--webhook-queue"),
    (["--webhook-retry-hours", "0"], {}, "--webhook-retry-hours"),
    ([], {"ALEATORIA_WEBHOOK_RETRY_HOURS": "soon"}, "ALEATORIA_WEBHOOK_RETRY_HOURS"),
])
def test_bad_values_are_one_line_errors(monkeypatch, argv, env, culprit):
    """A bad value stops start-up with one line that names the option or variable."""
    with pytest.raises(SystemExit) as error:
        parse(argv, env, monkeypatch)
    message = str(error.value)
    assert message.startswith("aleatoria: ") and culprit in message and "\n" not in message


@pytest.mark.parametrize("secret, says", [
    ("abc", "must be whsec_ and the base64 of 24-64 random bytes"),
    ("f" * 64, "whsec_$(openssl rand -base64 32)"),  # what openssl rand -hex 32 makes
    ("whsec_" + "!" * 40, "is not whsec_ and base64 (make one with"),
    ("whsec_" + base64.b64encode(b"k" * 16).decode(), "decodes to 16 bytes; a key has 24-64"),
    ("whsec_" + base64.b64encode(b"k" * 65).decode(), "decodes to 65 bytes"),
    ("whsec_abc", "decodes to 2 bytes"),
])
def test_a_bad_secret_is_refused_without_repeating_it(monkeypatch, secret, says):
    """The key is checked as Standard Webhooks make it; the error never shows it."""
    with pytest.raises(SystemExit) as error:
        parse([], {"ALEATORIA_WEBHOOK_SECRET": secret}, monkeypatch)
    message = str(error.value)
    assert "ALEATORIA_WEBHOOK_SECRET" in message and says in message
    assert secret not in message
