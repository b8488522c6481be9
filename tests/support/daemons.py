"""
Daemons as operators run them: C{twistd} processes on a Redis, to be
signalled (SIGTERM, SIGKILL) for real.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

TWISTD = str(Path(sys.executable).parent / "twistd")


class Spawned:
    """
    One C{twistd aleatoria} on the Redis at C{redis_port} (or, with
    C{None}, on the memory store), started and serving.
    """

    def __init__(self, redis_port, cwd, *options, env=None):
        store = ["--store", "memory"] if redis_port is None else [
            "--store", "redis", "--redis-host", "127.0.0.1", "--redis-port", str(redis_port)]
        self.process = subprocess.Popen(
            [TWISTD, "--nodaemon", "--pidfile=", "aleatoria",
             "--port", "tcp:0:interface=127.0.0.1", "--allow-no-origin", *store,
             # every test client comes from 127.0.0.1: one address for all its users
             "--address-rate", "1000000", "--address-burst", "1000000",
             "--address-stored-per-hour", "1000000",
             "--address-conversations-per-hour", "1000000",
             "--address-stored-bytes-per-hour", "1000000000000",
             "--max-rooms-per-address", "1000000", *options],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=None if env is None else dict(os.environ, **env),
        )
        self.log = []
        self.port = self.node = None
        for line in self.process.stdout:
            self.log.append(line)
            if found := re.search(r"Listening on \S*:(\d+)", line):
                self.port = int(found[1])
            if found := re.search(r"Joined the daemons sharing Redis as node (\w+)", line):
                self.node = found[1]
            if self.port and (self.node or redis_port is None):
                return
        raise AssertionError("the daemon never got going:\n" + "".join(self.log))

    async def heard(self, pattern, since=0):
        """
        The first line of the log from line C{since} on that matches
        C{pattern} (reading on, in a thread as L{exited}, until one does);
        its match.
        """
        from twisted.internet.threads import deferToThread

        for line in self.log[since:]:
            if found := re.search(pattern, line):
                return found

        def read():
            for line in self.process.stdout:
                self.log.append(line)
                if found := re.search(pattern, line):
                    return found
            raise AssertionError(f"never logged {pattern!r}:\n" + "".join(self.log))

        return await deferToThread(read)

    async def exited(self):
        """
        Wait (in a thread: the test's clients must go on answering) for the
        process to exit; its status. The rest of its log joins C{log}.
        """
        from twisted.internet.threads import deferToThread

        rest, _ = await deferToThread(self.process.communicate, timeout=30)
        self.log.append(rest)
        return self.process.returncode

    def stop(self):
        """SIGTERM, as systemd stops it; the whole log, once it has exited."""
        self.process.terminate()
        rest, _ = self.process.communicate(timeout=30)
        self.log.append(rest)
        return "".join(self.log)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)
