"""
C{--workers N}: N processes on one listening socket and one Redis, as one
daemon (issue: Speed II, item 4). Which worker accepts a connection is the
kernel's choice; a test makes it by stopping (SIGSTOP) the other, which
then cannot accept.
"""

import json
import os
import signal
import socket
import subprocess
import urllib.request
from contextlib import contextmanager

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from aleatoria.daemon.workers import metrics_port

from ..support.daemons import TWISTD, Spawned
from ..support.lifecycle_helpers import until
from ..support.wsclient import connect


def two_free_ports():
    """A port whose next one is free too: worker 1's metrics are served there."""
    while True:
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


class TwoWorkers:
    def __init__(self, redis_port, tmp_path, *options):
        self.port = two_free_ports()
        self.metrics = two_free_ports()
        self.daemon = Spawned(
            redis_port, tmp_path, "--workers", "2",
            "--port", f"tcp:{self.port}:interface=127.0.0.1",
            "--metrics-port", f"tcp:{self.metrics}:interface=127.0.0.1", *options)
        self.pids = {0: self.daemon.process.pid}

    async def started(self, since=0):
        """Worker 1 started and joined the daemons on Redis; its pid."""
        started = await self.daemon.heard(r"Started worker 1 \(pid (\d+)\)", since)
        await self.daemon.heard(r"\[worker 1\] Joined the daemons", since)
        self.pids[1] = int(started[1])
        return self.pids[1]

    @contextmanager
    def only(self, index):
        """Worker C{index} alone accepts: the other is stopped meanwhile."""
        other = self.pids[1 - index]
        os.kill(other, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(other, signal.SIGCONT)

    async def connect(self, index, user):
        with self.only(index):
            client = await connect(self.port, user, room=f"{user}'s", origin=None)
            # answered: the connection is that worker's, not merely queued
            await client.request({"type": "get_rooms"}, "rooms_list")
        return client

    async def connections(self, index):
        url = f"http://127.0.0.1:{self.metrics + index}/metrics"
        text = await deferToThread(lambda: urllib.request.urlopen(url).read().decode())
        (line,) = [line for line in text.splitlines()
                   if line.startswith("aleatoria_connections{")]
        return line


def gone(pid):
    """The process has exited (a zombie nobody reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest_twisted.ensureDeferred
async def test_workers_share_the_port_and_the_users(own_redis, tmp_path):
    """
    A user on one worker writes to a user on the other; each worker's
    metrics, on its own port, count its own connection and say which
    worker it is; the log names the worker on every line; SIGTERM to the
    main process stops both, every client closed with 1001.
    """
    workers = TwoWorkers(own_redis.port, tmp_path)
    try:
        await workers.started()
        alice = await workers.connect(1, "alice")
        bob = await workers.connect(0, "bob")
        await until(lambda: own_redis.raw("EXISTS", "presence:alice") == "1")
        alice.send({"type": "chat_message", "toUser": "bob", "payload": {"content": "hi"}})
        assert (await bob.expect("chat_message"))["payload"] == {"content": "hi"}
        bob.send({"type": "chat_message", "toUser": "alice", "payload": {"content": "yo"}})
        echo = await alice.expect("chat_message")
        assert (echo["fromUser"], echo["incoming"]) == ("alice", False)
        assert (await alice.expect("chat_message"))["fromUser"] == "bob"
        assert await workers.connections(0) == 'aleatoria_connections{worker="0"} 1.0'
        assert await workers.connections(1) == 'aleatoria_connections{worker="1"} 1.0'

        workers.daemon.process.terminate()
        assert await workers.daemon.exited() == -signal.SIGTERM  # as systemd expects
        assert (await alice.closed())[0] == 1001
        assert (await bob.closed())[0] == 1001
        assert gone(workers.pids[1])
    finally:
        workers.daemon.kill()
    log = "".join(workers.daemon.log)
    assert "[worker 1] alice connected from 127.0.0.1" in log
    assert "[worker 0] bob connected from 127.0.0.1" in log
    assert "[worker 0] Worker 1 stopped" in log
    assert all("[worker " in line for line in log.splitlines()), log


@pytest_twisted.ensureDeferred
async def test_a_killed_worker_is_started_again(own_redis, tmp_path):
    """
    A worker killed with -9 is logged and started again; its users are cut
    off, and the new worker serves users who reach the others.
    """
    workers = TwoWorkers(own_redis.port, tmp_path)
    try:
        killed = await workers.started()
        carol = await workers.connect(1, "carol")
        os.kill(killed, signal.SIGKILL)
        assert (await carol.closed())[0] == 1006
        since = len(workers.daemon.log)
        await workers.daemon.heard(r"\[worker 0\] Worker 1 ended unexpectedly .*"
                                   r"starting it again in 1 s")
        assert await workers.started(since) != killed

        dave = await workers.connect(1, "dave")
        erin = await workers.connect(0, "erin")
        await until(lambda: own_redis.raw("EXISTS", "presence:dave") == "1")
        erin.send({"type": "chat_message", "toUser": "dave", "payload": {"content": "back?"}})
        assert (await dave.expect("chat_message"))["fromUser"] == "erin"
    finally:
        workers.daemon.stop()


@pytest_twisted.ensureDeferred
async def test_workers_stop_when_the_main_process_is_killed(own_redis, tmp_path):
    """
    With the main process killed (-9), nobody would start a worker again
    or stop it: it closes its clients (1001) and exits by itself.
    """
    workers = TwoWorkers(own_redis.port, tmp_path)
    try:
        orphan = await workers.started()
        frank = await workers.connect(1, "frank")
        os.kill(workers.pids[0], signal.SIGKILL)
        await workers.daemon.heard(r"\[worker 1\] The main process is gone: this worker stops")
        assert (await frank.closed())[0] == 1001
        await until(lambda: gone(orphan))
    finally:
        workers.daemon.kill()
        if not gone(workers.pids.get(1, 0)):
            os.kill(workers.pids[1], signal.SIGKILL)


def test_workers_need_redis(tmp_path):
    done = subprocess.run(
        [TWISTD, "--nodaemon", "--pidfile=", "aleatoria", "--workers", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "aleatoria: --workers 2 needs --store redis: workers share sessions, rooms "
        "and the pool through Redis"
    ]


@pytest.mark.parametrize(("given", "second"), [
    ("9100", "9101"),
    ("tcp:9100", "tcp:9101"),
    ("tcp:9100:interface=10.0.0.5", "tcp:9101:interface=10.0.0.5"),
    ("tcp6:port=9100:interface=\\:\\:1", "tcp6:9101:interface=\\:\\:1"),
])
def test_each_worker_has_its_metrics_port(given, second):
    assert metrics_port(given, 0) == given.replace("port=", "")
    assert metrics_port(given, 1) == second


def test_a_metrics_port_not_numbered_per_worker_is_refused():
    with pytest.raises(ValueError, match="cannot be numbered per worker"):
        metrics_port("unix:/run/metrics.sock", 1)


def test_json_log_lines_name_the_worker(tmp_path):
    from twisted.logger import LogLevel

    from aleatoria.ops import logs

    path = tmp_path / "log.json"
    observer = logs.observer("json", str(path), worker=1)
    observer({"log_namespace": "aleatoria.domain.hub", "log_level": LogLevel.info,
              "log_format": "{user} connected", "user": "alice", "log_time": 0})
    record = json.loads(path.read_text())
    assert (record["worker"], record["message"], record["user"]) == (1, "alice connected", "alice")


@pytest_twisted.ensureDeferred
async def test_workers_share_the_key_they_were_not_given(own_redis, tmp_path):
    """
    --workers 2 --anonymous without ALEATORIA_ANONYMOUS_SECRET: the main
    process makes the key and hands it to its worker (each made its own,
    and half the reconnects got 401), so a token one worker made brings
    its client back on the other -- and on the worker restarted after a
    SIGKILL (issue: attacks, item 6).
    """

    async def welcome(index, token=None):
        """Connect to worker C{index} (with C{token}); the welcome's payload."""
        with workers.only(index):
            client = await connect(workers.port, None, "r", origin=None,
                                   extra=f"&reconnectToken={token}" if token else "")
            payload = (await client.expect("welcome"))["payload"]
            await client.request({"type": "get_rooms"}, "rooms_list")
        await client.close()
        return payload

    workers = TwoWorkers(own_redis.port, tmp_path, "--anonymous")
    try:
        killed = await workers.started()
        first = await welcome(0)
        on_one = await welcome(1, first["reconnectToken"])
        assert on_one["userId"] == first["userId"]
        back = await welcome(0, on_one["reconnectToken"])
        assert back["userId"] == first["userId"]

        since = len(workers.daemon.log)
        os.kill(killed, signal.SIGKILL)
        assert await workers.started(since) != killed
        again = await welcome(1, back["reconnectToken"])
        assert again["userId"] == first["userId"]
    finally:
        workers.daemon.kill()
