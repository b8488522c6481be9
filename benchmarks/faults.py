"""
`make bench-faults`: three daemons on one Redis, a steady mixed stream --
room chat, direct messages, signaling and pairing -- with every message
counted, and one fault at a time:

- Redis stopped (SIGSTOP) for 5 s, and for 20 s;
- Redis killed (SIGKILL) and restarted on its append-only file;
- a daemon stopped with SIGTERM, and one killed with -9 (its clients come
  back through the other daemons a second later, as behind a load balancer);
- behind Redis Sentinel (a primary, a replica, three sentinels, the
  daemons given only the sentinels): the primary killed (SIGKILL) and
  replaced by the sentinels, and a manual ``SENTINEL FAILOVER``. The fault
  ends when the sentinels name the new primary.

For each: messages sent, deliveries due, messages lost silently (a due
delivery missing, the sender still connected and never told
``unavailable``: must be 0), messages that were in flight when their
sender's own connection died (the sender sees its connection drop),
messages answered ``unavailable``, deliveries duplicated, how long
cross-daemon messages failed (first to last failure) and until how long
after the fault ended, and session keys left in Redis after everyone
leaves. Pairing requests are counted the same way
(each gets exactly one answer), and nobody may ever hold two partners.

    .venv/bin/python benchmarks/faults.py [--only NAME] [--json PATH] [--smoke]

--smoke runs the SIGTERM scenario with short phases: a check that the
script works (the test suite runs it), not a measurement.

Results: a table on stdout, and benchmarks/results/<date>-faults.json.
"""

import argparse
import collections
import datetime
import itertools
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import task
from twisted.internet.defer import ensureDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.threads import deferToThread

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from tests.support.sentinel import SentinelSetup  # noqa: E402 (the tests' real sentinels)

TWISTD = str(Path(sys.executable).parent / "twistd")
REDIS = shutil.which("redis-server")
NODE_TTL = 5.0
DUE_WITHIN = 2.0
"""A delivery is due to a recipient whose connection stayed open this long after the send."""
CHATTERS_PER_DAEMON, PAIRERS_PER_DAEMON, ROOMS = 10, 4, 3
TICK = 0.1
PHASES = {
    "full": dict(warm=3, after=12, settle=3, leave=NODE_TTL + 3),
    "smoke": dict(warm=1, after=3, settle=1, leave=2),
}
SESSION_KEYS = ("presence:", "user:rooms:", "room:members:", "match:", "available:", ":users")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sleep(reactor, seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class Redis:
    """A redis-server with an append-only file, fsynced at every write."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def signal(self, number):
        self.process.send_signal(number)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        self.process.send_signal(18)  # SIGCONT, should it be stopped
        self.process.terminate()
        self.process.wait()

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *args],
                              capture_output=True, text=True, check=True).stdout.split()


class Daemon:
    """One C{twistd aleatoria} process, logging to a file."""

    def __init__(self, index, store, directory):
        self.index = index
        self.port = free_port()
        self.log = directory / f"daemon{index}.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [TWISTD, "--nodaemon", "--pidfile=", "aleatoria",
                 "--port", f"tcp:{self.port}:interface=127.0.0.1", "--allow-no-origin",
                 "--store", "redis", *store, "--node-ttl", str(NODE_TTL),
                 "--rate-limit", "1000", "--rate-burst", "1000",
                 "--address-rate", "1000000", "--address-burst", "1000000",
                 "--connect-rate", "1000000", "--connect-burst", "1000000",
                 "--stored-per-hour", "1000000", "--conversations-per-hour", "1000000",
                 "--address-stored-per-hour", "1000000",
                 "--address-conversations-per-hour", "1000000",
                 "--stored-bytes-per-hour", "1000000000000",
                 "--address-stored-bytes-per-hour", "1000000000000"],
                cwd=directory, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "Joined the daemons" not in self.log.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"daemon {index} never joined:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.up = True

    def signal(self, number):
        self.up = False
        self.process.send_signal(number)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def wait_for_port(port):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class _Protocol(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.client.opened(self)

    def onMessage(self, payload, isBinary):
        self.factory.client.received(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        self.factory.client.closed()


class Client:
    """
    One user. It reconnects (a second later, through a daemon that is up)
    whenever its connection is lost, and reports everything it gets to the
    ledger.
    """

    def __init__(self, bench, user, room, home):
        self.bench = bench
        self.user = user
        self.room = room
        self.home = home
        self.daemon = None
        self.protocol = None
        self.serial = 0
        self.leaving = False
        # pairing
        self.partner = None
        self.request = None
        self.hangups = {}

    @property
    def open(self):
        return self.protocol is not None

    def connect(self, daemon):
        self.daemon = daemon
        url = f"ws://127.0.0.1:{daemon.port}/ws?userId={self.user}&room={self.room}"
        factory = WebSocketClientFactory(url)
        factory.protocol = _Protocol
        factory.client = self
        d = TCP4ClientEndpoint(self.bench.reactor, "127.0.0.1", daemon.port).connect(factory)
        d.addErrback(lambda _: self.closed())

    def opened(self, protocol):
        self.serial += 1
        self.protocol = protocol
        self.bench.ledger.opened(self)
        if self.room.startswith("pair-"):
            self.partner = self.request = None
            self.send({"type": "user_available_webrtc", "messageId": self.bench.next_id()})

    def closed(self):
        if self.protocol is not None:
            self.bench.ledger.closed(self)
        self.protocol = None
        if self.request is not None:
            self.bench.ledger.request_dropped(self.request)
            self.request = None
        if not self.leaving:
            self.bench.reactor.callLater(1.0, self.reconnect)

    def reconnect(self):
        if self.leaving or self.open:
            return
        up = [d for d in self.bench.daemons if d.up]
        self.connect(self.home if self.home.up else random.choice(up))

    def send(self, message):
        self.protocol.sendMessage(json.dumps(message).encode())

    def received(self, message):
        kind, payload = message["type"], message.get("payload") or {}
        ledger = self.bench.ledger
        if kind in ("chat_message", "webrtc_offer") and message.get("incoming", True):
            if message["fromUser"] != self.user:
                ledger.delivered(message.get("messageId"), self.user)
        elif kind == "error":
            ledger.refused(payload.get("messageId"), payload.get("code"))
            self.refused(payload.get("messageId"), payload.get("code"))
        elif kind == "assign_role":
            self.assigned(payload["peerId"], payload["role"], message.get("messageId"))
        elif kind == "no_peer_available":
            self.answered(message.get("messageId"))
        elif kind == "hangup":
            self.partner = None
            self.send({"type": "user_available_webrtc", "messageId": self.bench.next_id()})

    # Pairing: one request at a time; every request gets exactly one answer,
    # which names it (an assign_role that names nothing is the polite side
    # of somebody else's pairing).

    def pair(self):
        if self.open and self.partner is None and self.request is None:
            self.request = self.bench.next_id()
            self.bench.ledger.requested(self.request, self)
            self.send({"type": "request_random_peer", "messageId": self.request})

    def assigned(self, peer, role, answering):
        if self.partner is not None and peer != self.partner:
            self.bench.ledger.two_partners += 1
            self.bench.ledger.two_partner_examples.append(
                (self.user, self.partner, peer, round(self.bench.reactor.seconds(), 2)))
        fresh = peer != self.partner
        self.partner = peer
        self.answered(answering)
        if role == "impolite" and fresh:
            self.bench.reactor.callLater(0.3, self.hang_up, peer)

    def answered(self, request):
        if request is not None and request == self.request:
            self.bench.ledger.answered(request)
            self.request = None

    def refused(self, message_id, code):
        if message_id is not None and message_id == self.request:
            self.request = None
        elif message_id in self.hangups and code == "unavailable":
            peer = self.hangups.pop(message_id)
            self.bench.reactor.callLater(0.3, self.hang_up, peer, True)

    def hang_up(self, peer, again=False):
        """End the call (again, if the server could not end it the first time)."""
        if self.open and (self.partner == peer or again):
            self.partner = None
            message_id = self.bench.next_id()
            self.hangups[message_id] = peer
            self.send({"type": "hangup", "toUser": peer, "messageId": message_id})
            self.send({"type": "user_available_webrtc", "messageId": self.bench.next_id()})

    def leave(self):
        self.leaving = True
        if self.open:
            self.protocol.sendClose(1000)


Sent = collections.namedtuple("Sent", "kind at sender expected cross")


class Ledger:
    """Every message sent, who was due to get it, who got it, and what the sender heard."""

    def __init__(self, clock):
        self.clock = clock
        self.sent = {}
        self.got = collections.defaultdict(collections.Counter)
        self.refusals = {}
        self.connections = {}
        self.requests = {}
        self.request_info = {}
        self.two_partners = 0
        self.two_partner_examples = []

    def opened(self, client):
        self.connections[client.user, client.serial] = [self.clock(), None]

    def closed(self, client):
        self.connections[client.user, client.serial][1] = self.clock()

    def send(self, message_id, kind, sender, recipients, cross):
        self.sent[message_id] = Sent(kind, self.clock(),
                                     (sender.user, sender.serial, sender.daemon.index),
                                     [(c.user, c.serial, c.daemon.index) for c in recipients],
                                     cross)

    def delivered(self, message_id, user):
        self.got[message_id][user] += 1

    def refused(self, message_id, code):
        if message_id and code in ("unavailable", "user_offline"):
            self.refusals[message_id] = code

    def requested(self, request, client):
        self.requests[request] = None
        self.request_info[request] = (client.user, client.serial, self.clock())

    def answered(self, request):
        self.requests[request] = "answered"

    def request_dropped(self, request):
        self.requests[request] = "dropped"

    def due(self, connection, at):
        opened, closed = self.connections[connection]
        return opened <= at and (closed is None or closed >= at + DUE_WITHIN)

    def account(self, fault_end):
        lost = unavailable = duplicated = deliveries = due_total = sender_dropped = 0
        failures, examples = [], []
        for message_id, sent in self.sent.items():
            due = [user for user, serial, _ in sent.expected
                   if self.due((user, serial), sent.at)]
            got = self.got.get(message_id, collections.Counter())
            due_total += len(due)
            deliveries += sum(1 for user in due if got[user])
            duplicated += sum(count - 1 for count in got.values() if count > 1)
            missing = [user for user in due if not got[user]]
            refused = message_id in self.refusals
            unavailable += self.refusals.get(message_id) == "unavailable"
            if missing and not refused and not self.due(sent.sender[:2], sent.at):
                sender_dropped += 1
            elif missing and not refused:
                lost += 1
                examples.append({
                    "id": message_id, "kind": sent.kind, "at": round(sent.at - fault_end, 2),
                    "sender": sent.sender, "missing": [
                        (user, daemon) for user, _, daemon in sent.expected if user in missing],
                })
            if sent.cross and (missing or refused):
                failures.append(sent.at)
        answered = sum(state == "answered" for state in self.requests.values())
        unanswered = [(request, *self.request_info[request][:1],
                       round(self.request_info[request][2] - fault_end, 2))
                      for request, state in self.requests.items()
                      if state is None and request not in self.refusals]
        return {
            "messages": len(self.sent),
            "deliveries_due": due_total,
            "delivered": deliveries,
            "lost_silently": lost,
            "answered_unavailable": unavailable,
            "sender_dropped": sender_dropped,
            "duplicated": duplicated,
            "failures_for_s": round(max(failures) - min(failures), 1) if failures else 0.0,
            "cross_daemon_back_after_s": round(max(max(failures) - fault_end, 0.0), 1)
            if failures else 0.0,
            "pairing_requests": len(self.requests),
            "pairing_unanswered": len(unanswered),
            "unanswered_examples": unanswered[:5],
            "pairing_answered": answered,
            "two_partners": self.two_partners,
            "two_partner_examples": [(user, old, new, round(at - fault_end, 2))
                                     for user, old, new, at in self.two_partner_examples[:5]],
            "lost_examples": examples[:5],
        }


class Bench:
    def __init__(self, reactor, directory, sentinels=False):
        self.reactor = reactor
        self.directory = directory
        self.ids = itertools.count()
        self.ledger = Ledger(reactor.seconds)
        self.redis = self.sentinels = None
        if sentinels:
            self.sentinels = SentinelSetup(directory / "redis").start()
            store = ["--redis-sentinel", self.sentinels.addresses]
        else:
            self.redis = Redis(directory)
            self.redis.start()
            store = ["--redis-host", "127.0.0.1", "--redis-port", str(self.redis.port)]
        self.daemons = [Daemon(n, store, directory) for n in range(3)]
        self.chatters, self.pairers = [], []
        for daemon in self.daemons:
            for n in range(CHATTERS_PER_DAEMON):
                user = f"c{daemon.index}{n}"
                self.chatters.append(Client(self, user, f"room-{n % ROOMS}", daemon))
            for n in range(PAIRERS_PER_DAEMON):
                user = f"p{daemon.index}{n}"
                self.pairers.append(Client(self, user, f"pair-{user}", daemon))

    def next_id(self):
        return f"m{next(self.ids)}"

    @property
    def clients(self):
        return self.chatters + self.pairers

    def stop(self):
        for daemon in self.daemons:
            daemon.stop()
        (self.sentinels or self.redis).stop()

    def tick(self):
        live = [c for c in self.chatters if c.open]
        if len(live) < 2:
            return
        for _ in range(2):
            sender = random.choice(live)
            members = [c for c in live if c.room == sender.room and c is not sender]
            self.post(sender, {"type": "chat_message", "room": sender.room,
                               "payload": {"content": "r"}}, members)
        for kind in ("chat_message", "chat_message", "webrtc_offer"):
            sender, recipient = random.sample(live, 2)
            message = {"type": kind, "toUser": recipient.user, "payload": {"content": "d"}}
            self.post(sender, message, [recipient])
        for pairer in self.pairers:
            pairer.pair()

    def post(self, sender, message, recipients):
        message["messageId"] = message_id = self.next_id()
        cross = any(r.daemon is not sender.daemon for r in recipients)
        self.ledger.send(message_id, message["type"], sender, recipients, cross)
        sender.send(message)

    def session_keys(self):
        keys = (self.sentinels.primary.raw("KEYS", "*").split() if self.sentinels
                else self.redis.cli("KEYS", "*"))
        return [k for k in keys if any(s in k for s in SESSION_KEYS)]


async def run_scenario(reactor, name, fault, phases):
    directory = Path(tempfile.mkdtemp(prefix=f"faults-{name}-"))
    bench = Bench(reactor, directory, sentinels=name in BEHIND_SENTINELS)
    try:
        for client in bench.clients:
            client.connect(client.home)
        await sleep(reactor, 2)
        ticker = task.LoopingCall(bench.tick)
        ticker.clock = reactor
        ticker.start(TICK)
        await sleep(reactor, phases["warm"])
        print(f"  {name}: fault", file=sys.stderr)
        fault_end = await fault(reactor, bench)
        await sleep(reactor, phases["after"])
        ticker.stop()
        await sleep(reactor, phases["settle"])
        result = bench.ledger.account(fault_end)
        for client in bench.clients:
            client.leave()
        await sleep(reactor, phases["leave"])
        result["session_keys_left"] = len(bench.session_keys())
        return result
    finally:
        bench.stop()
        shutil.rmtree(directory, ignore_errors=True)


def redis_stopped(seconds):
    async def fault(reactor, bench):
        bench.redis.signal(19)  # SIGSTOP
        await sleep(reactor, seconds)
        bench.redis.signal(18)  # SIGCONT
        return reactor.seconds()
    return fault


async def redis_killed(reactor, bench):
    bench.redis.kill()
    await sleep(reactor, 1)
    bench.redis.start()
    return reactor.seconds()


def daemon_signalled(number):
    async def fault(reactor, bench):
        bench.daemons[2].signal(number)
        return reactor.seconds()
    return fault


async def primary_killed(reactor, bench):
    """SIGKILL the primary; the fault ends when the sentinels name the replica."""
    bench.sentinels.kill_primary()
    await deferToThread(bench.sentinels.await_new_primary)
    return reactor.seconds()


async def manual_failover(reactor, bench):
    await deferToThread(bench.sentinels.failover)
    await deferToThread(bench.sentinels.await_new_primary)
    return reactor.seconds()


BEHIND_SENTINELS = ("sentinel-primary-kill-9", "sentinel-manual-failover")

SCENARIOS = {
    "redis-sigstop-5s": redis_stopped(5),
    "redis-sigstop-20s": redis_stopped(20),
    "redis-sigkill-restart": redis_killed,
    "daemon-sigterm": daemon_signalled(15),
    "daemon-kill-9": daemon_signalled(9),
    "sentinel-primary-kill-9": primary_killed,
    "sentinel-manual-failover": manual_failover,
}


async def main(reactor, only, out, mode):
    results = {}
    for name, fault in SCENARIOS.items():
        if only and name not in only:
            continue
        print(f"running {name}", file=sys.stderr)
        results[name] = await run_scenario(reactor, name, fault, PHASES[mode])
    print_table(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "mode": mode,
        "node_ttl": NODE_TTL, "daemons": 3,
        "clients": 3 * (CHATTERS_PER_DAEMON + PAIRERS_PER_DAEMON),
        "results": results,
    }, indent=2) + "\n")
    return results


COLUMNS = ("messages", "lost_silently", "answered_unavailable", "sender_dropped", "duplicated",
           "failures_for_s", "cross_daemon_back_after_s", "session_keys_left", "pairing_requests",
           "pairing_unanswered", "two_partners")


def print_table(results):
    print("fault".ljust(25) + "".join(c[:12].rjust(13) for c in COLUMNS))
    for name, result in results.items():
        print(name.ljust(25) + "".join(str(result[c]).rjust(13) for c in COLUMNS))


def cli():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--json", type=Path, default=HERE / "results" /
                        f"{datetime.date.today().isoformat()}-faults.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    only, mode = args.only, "full"
    if args.smoke:
        only, mode = ["daemon-sigterm"], "smoke"
    task.react(lambda reactor: ensureDeferred(main(reactor, only, args.json, mode)))


if __name__ == "__main__":
    cli()
