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
            return sys.stdout
        return open(self.path, "a", encoding="utf-8")

    def start(self):
        """Open the file and start the periodic flush."""
        if self._file is None:
            self._file = self._open()
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
        if self._file is None:
            self._file = self._open()
        try:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
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
        if self.path == "-" or self._file is None:
            return
        old, self._file = self._file, None
        old.close()
        try:
            self._file = self._open()
        except OSError as e:
            # Lines wait in the buffer; the next flush tries to open the file again.
            _log.error("cannot reopen the stats log {path}: {error}", path=self.path, error=e)

    def close(self):
        """Stop the periodic flush, write what is buffered and close the file."""
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        self._flusher = None
        try:
            self.flush()
        except OSError as e:  # the file could not even be opened
            self.lines_lost += len(self._lines)
            self._lines = []
            _log.error("cannot write the stats log {path}: {error}", path=self.path, error=e)
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None
