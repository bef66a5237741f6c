"""The ``--stats-log`` sink: every stat as one line of JSON, in a file or on stdout."""

import sys

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

_log = Logger()


class StatsLog:
    """Writes ``stat.to_json()`` and a newline per stat to ``path`` (``"-"``: stdout).

    Lines are buffered and written every ``flush_interval`` seconds, when
    ``max_buffered`` lines are waiting, and on ``close()``. A write that fails is logged
    (at most once a minute) and its lines are counted in ``lines_lost``: a full disk must
    not stop the server, nor grow its memory.
    """

    name = "stats-log"

    def __init__(self, path, *, reactor=None, flush_interval=1.0, max_buffered=10000):
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self.lines_written = 0
        self.lines_lost = 0
        self._reactor = reactor
        self._flush_interval = flush_interval
        self._max_buffered = max_buffered
        self._lines = []
        self._file = None
        self._flusher = None
        self._last_error_logged = None

    def _open(self):
        if self.path == "-":
            return None
        # Unbuffered: the lines are buffered here, and a failed write must not leave
        # bytes in a file buffer to come out later.
        return open(self.path, "ab", buffering=0)

    def _write(self, text):
        if self.path == "-":
            # The process's own stdout: twist points sys.stdout at the log.
            stdout = sys.__stdout__ or sys.stdout
            stdout.write(text)
            stdout.flush()
            return
        if self._file is None:
            self._file = self._open()
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[self._file.write(data):]

    def start(self):
        """Open the file and start the periodic flush."""
        if self._file is None:
            try:
                self._file = self._open()
            except OSError as e:  # the first flush tries again
                _log.error("cannot open the stats log {path}: {error}", path=self.path, error=e)
        self._flusher = LoopingCall(self.flush)
        self._flusher.clock = self._reactor
        self._flusher.start(self._flush_interval, now=False)

    def record(self, stat):
        self._lines.append(stat.to_json())
        if len(self._lines) >= self._max_buffered:
            self.flush()

    def flush(self):
        """Write out the buffered lines now."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self._write("\n".join(lines) + "\n")
        except (OSError, ValueError) as e:  # ValueError: the file was closed under us
            self.lines_lost += len(lines)
            now = self._reactor.seconds()
            if self._last_error_logged is None or now - self._last_error_logged >= 60:
                self._last_error_logged = now
                _log.error(
                    "cannot write the stats log {path}: {error} ({lost} lines lost so far)",
                    path=self.path,
                    error=e,
                    lost=self.lines_lost,
                )
            return
        self.lines_written += len(lines)

    def reopen(self):
        """Flush, then close and reopen the file (after log rotation); stdout stays."""
        self.flush()
        if self._file is None:
            return
        old, self._file = self._file, None
        old.close()
        try:
            self._file = self._open()
        except OSError as e:
            # The next flush tries again (its lines are counted lost if it cannot).
            _log.error("cannot reopen the stats log {path}: {error}", path=self.path, error=e)

    def close(self):
        """Stop the periodic flush, write what is buffered and close the file."""
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        self._flusher = None
        self.flush()
        if self._file is not None:
            self._file.close()
        self._file = None
