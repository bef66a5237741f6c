"""Test helpers: ``twist statserver`` as a child process, its output lines awaited.

Every Deferred returned here is bounded by a timeout.
"""

import json
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import ProcessProtocol
from wsclient import PROCESS_TIMEOUT, bounded


def twist(*args):
    """The command line: the ``twist`` script installed beside this Python, if any."""
    script = Path(sys.executable).with_name("twist")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "twisted", *args]


class ProcessGone(Exception):
    """The process ended before writing the line awaited."""


class Lines:
    """Lines seen so far, and Deferreds for the first line matching a test."""

    def __init__(self):
        self.seen = []
        self._waiting = []
        self._ended = None

    def add(self, line):
        self.seen.append(line)
        for entry in list(self._waiting):
            test, d = entry
            if test(line):
                self._waiting.remove(entry)
                d.callback(line)

    def end(self, why):
        """No more lines: fail the waiting Deferreds (and later ones that find no line)."""
        self._ended = why
        waiting, self._waiting = self._waiting, []
        for _, d in waiting:
            d.errback(ProcessGone(why))

    def first(self, test):
        for line in self.seen:
            if test(line):
                return succeed(line)
        if self._ended is not None:
            return fail(ProcessGone(self._ended))
        d = Deferred()
        self._waiting.append((test, d))
        return bounded(d, PROCESS_TIMEOUT)


class Twist(ProcessProtocol):
    """``twist`` as a child process: its stdout and stderr lines, and how it ended
    (``ended`` fires with the ``ProcessDone``/``ProcessTerminated``)."""

    def __init__(self):
        self.stdout = Lines()
        self.stderr = Lines()
        self.ended = Deferred()
        self._partial = {1: b"", 2: b""}

    def childDataReceived(self, fd, data):
        lines = (self._partial[fd] + data).split(b"\n")
        self._partial[fd] = lines.pop()
        for line in lines:
            (self.stdout if fd == 1 else self.stderr).add(line.decode("utf-8", "replace"))

    def processEnded(self, reason):
        why = f"twist ended ({reason.value}); stderr: {self.stderr.seen!r}"
        self.stdout.end(why)
        self.stderr.end(why)
        self.ended.callback(reason.value)

    def kill(self):
        """SIGKILL, if it still runs."""
        try:
            self.process.signalProcess("KILL")
        except Exception:  # already gone
            pass


def spawn_twist(*args, env, launcher=()):
    """``twist ARGS`` (run by ``launcher`` if given) as a ``Twist``; ``.process`` is its
    process transport."""
    proto = Twist()
    argv = [*launcher, *twist(*args)]
    proto.process = reactor.spawnProcess(proto, argv[0], argv, env=env)
    return proto


def json_lines(lines, key):
    """The JSON objects among ``lines`` that have ``key``."""
    out = []
    for line in lines:
        try:
            # twist's JSON log records start with an RS character; stats lines do not.
            record = json.loads(line.lstrip("\x1e"))
        except ValueError:
            continue
        if isinstance(record, dict) and key in record:
            out.append(record)
    return out


def is_json_with(key, **values):
    """A test for ``Lines.first``: a JSON line with ``key`` and these values."""

    def test(line):
        found = json_lines([line], key)
        return bool(found) and all(found[0].get(k) == v for k, v in values.items())

    return test


async def listening_port(proto):
    """The port the server says (in twist's log) it listens on."""
    line = await proto.stdout.first(is_json_with("port", log_namespace="statserver.tap"))
    return json_lines([line], "port")[0]["port"]
