"""
The command line: C{twistd aleatoria [options]}.

Options and their environment variables come from L{aleatoria.daemon.config};
this module only turns them into a L{Config} and hands it to
L{aleatoria.daemon.service.make_service}.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn

from twisted.internet import endpoints
from twisted.python import usage

from aleatoria import __version__
from aleatoria.daemon import config, settings
from aleatoria.daemon.lifecycle import InOrder
from aleatoria.daemon.service import make_service
from aleatoria.daemon.workers import Worker, metrics_port
from aleatoria.ops import logs

_REPEATABLE = ("allowed-origin", "trusted-proxy", "public-host", "stun-url", "turn-url",
               "redis-sentinel", "webhook-url")


def _repeatable(name: str) -> Callable[[Options, str], None]:
    """The C{opt_} method of a repeatable option: each value is added to the others."""
    setting = next(s for s in settings.SETTINGS if s.name == name)

    def option(self: Options, value: str) -> None:
        self._repeat(name, value)

    option.__doc__ = f"{setting.help} [env {setting.env}]"
    return option


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        f"Aleatoria {__version__}. Serve WebSocket chat rooms, direct messages "
        "and random video-call matchmaking on /ws, with /health, /ready and "
        "/metrics beside it. Every option can also be set by the environment "
        "variable named in its help; the command line wins."
    )
    optFlags = [
        [s.name, None, f"{s.help} [env {s.env}]"]
        for s in settings.SETTINGS
        if s.name in settings.FLAGS
    ]
    optParameters = [
        [s.name, None, None, f"{s.help} [env {s.env}; default {s.default}]"]
        for s in settings.SETTINGS
        if s.name not in settings.FLAGS and s.name not in _REPEATABLE and not s.env_only
    ]

    def __init__(self) -> None:
        super().__init__()
        for name in _REPEATABLE:
            self[name] = None
        for name in settings.FLAGS:
            self[name] = None

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        A start-up error is one line on stderr and exit status 1 -- under
        Restart=on-failure, the journal would repeat the whole usage at
        every restart. The usage is for --help.
        """
        self.arguments = list(sys.argv[1:] if options is None else options)
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            raise SystemExit(f"aleatoria: {e}") from None

    def opt_version(self) -> NoReturn:
        """Print Aleatoria's version (and Twisted's and Python's), and exit."""
        print(version())
        raise SystemExit(0)

    opt_allowed_origin = _repeatable("allowed-origin")
    opt_trusted_proxy = _repeatable("trusted-proxy")
    opt_public_host = _repeatable("public-host")
    opt_stun_url = _repeatable("stun-url")
    opt_turn_url = _repeatable("turn-url")
    opt_redis_sentinel = _repeatable("redis-sentinel")
    opt_webhook_url = _repeatable("webhook-url")

    def _repeat(self, name: str, value: str) -> None:
        """A repeatable option: the values joined as its variable lists them."""
        self[name] = ",".join(filter(None, [self[name], value]))

    def postOptions(self) -> None:
        given = {name: self[name] for name in self}
        given.update({s.name: None for s in settings.SETTINGS if s.env_only})
        for name in settings.FLAGS:
            given[name] = True if given[name] else None
        try:
            self.config = config.resolve(given, os.environ)
        except config.ConfigError as e:
            raise usage.UsageError(str(e)) from None
        _check_endpoint(self.config.port, self._source("port"))
        if self.config.metrics_port:
            _check_endpoint(self.config.metrics_port, self._source("metrics-port"))
            if self.config.workers > 1:
                try:
                    metrics_port(self.config.metrics_port, 1)
                except ValueError as e:
                    raise usage.UsageError(str(e)) from None
        self.worker = Worker.from_environment(os.environ)
        if getattr(self, "parent", None) is not None:
            index = self.worker.index if self.worker else None
            if index is None and self.config.workers > 1:
                index = 0
            # twistd's own options (the parent checked above)
            logs.install(self.parent,  # type: ignore[arg-type]
                         self.config.log_format, worker=index)

    def _source(self, name: str) -> str:
        """Where setting C{name} came from, as its error names it: the option, or the variable."""
        if self[name] is None:
            variable = next(s.env for s in settings.SETTINGS if s.name == name)
            if variable in os.environ:
                return variable
        return f"--{name}"


def _check_endpoint(description: str, source: str = "--port") -> None:
    """
    Refuse a --port that is no endpoint description, before start-up; and
    a C{systemd:} one that names no socket passed in, or the wrong kind.
    C{source} names where it came from in the error.
    """
    from twisted.internet import endpoints, reactor

    try:
        endpoint = endpoints.serverFromString(reactor, description)
    except (IndexError, KeyError):
        raise usage.UsageError(
            f"{source}={description!r}: no such socket was passed to this process "
            "(systemd passes it with LISTEN_FDS and LISTEN_FDNAMES; start the daemon "
            "from its socket unit, or systemd-socket-activate with --fdname)"
        ) from None
    except (ValueError, TypeError) as e:
        raise usage.UsageError(f"{source}={description!r}: {e}") from None
    if isinstance(endpoint, endpoints.AdoptedStreamServerEndpoint):
        _check_adopted(description, endpoint, source)


def _check_adopted(description: str, endpoint: endpoints.AdoptedStreamServerEndpoint,
                   source: str) -> None:
    """
    The socket systemd passed in is of the family C{domain} says: a
    dual-stack C{ListenStream=8085} is IPv6, and adopted as IPv4 its
    clients' addresses would be garbage.
    """
    passed = socket.socket(fileno=endpoint.fileno)
    try:
        family = passed.family
    finally:
        passed.detach()
    if family != endpoint.addressFamily:
        raise usage.UsageError(
            f"{source}={description!r}: the socket passed in is "
            f"{family.name.removeprefix('AF_')}; say domain={family.name.removeprefix('AF_')}"
        )


def makeService(options: Options) -> InOrder:
    from twisted.internet import reactor

    if options.worker is None:
        reactor.addSystemEventTrigger("before", "shutdown", _second_signal_exits_at_once)
    else:
        reactor.addSystemEventTrigger("before", "shutdown", _further_signals_ignored)
    return make_service(options.config, worker=options.worker, arguments=options.arguments)


def _second_signal_exits_at_once() -> None:
    """
    The first SIGTERM or SIGINT starts a graceful shutdown (clients closed
    with 1001, reports flushed: a few seconds); a second one means now.
    """
    def now(signum: int, frame: FrameType | None) -> None:
        os._exit(128 + signum)

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, now)


def _further_signals_ignored() -> None:
    """
    A worker stops once: the SIGTERM its main process sends beside the
    operator's (systemd signals the whole group; a terminal's Ctrl-C, the
    foreground group) must not cut its shutdown short. The main process
    bounds it.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)


def version() -> str:
    import platform

    import twisted

    return (f"aleatoria {__version__} (Twisted {twisted.__version__}, "
            f"Python {platform.python_version()})")


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{aleatoria} command: the daemon in the foreground, taking the
    options C{twistd -n aleatoria} takes -- C{aleatoria --port 8085} is
    C{twistd --nodaemon --pidfile= aleatoria --port 8085}.
    """
    from twisted.scripts.twistd import run

    argv = sys.argv[1:] if argv is None else argv
    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "aleatoria", *argv]
    run()
