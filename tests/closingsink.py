"""A consumer sink that tells what it was given before and after it was closed."""

from statserver.sinks.base import Sink


class ClosingSink(Sink):
    """Keeps what it is given in ``stats``, and in ``late`` what comes after ``close()``."""

    def __init__(self):
        self.stats, self.late, self.closed = [], [], False

    def record(self, stat):
        (self.late if self.closed else self.stats).append(stat)

    def close(self):
        self.closed = True
