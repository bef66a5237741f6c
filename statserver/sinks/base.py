"""``Sink``: a base for consumer sinks, providing ``ISink`` with do-nothing defaults."""

from twisted.python.failure import Failure
from zope.interface import implementer

from statserver.interfaces import ISink


class RecordFailed(Exception):
    """Raised by ``record_many`` when ``count`` of its stats failed; ``failure`` is the
    first one's."""

    def __init__(self, count, failure):
        super().__init__(f"{count} stats failed: {failure.getErrorMessage()}")
        self.count = count
        self.failure = failure


@implementer(ISink)
class Sink:
    """Subclass and write ``record(stat)`` (or ``record_many(stats)``, where taking a list
    at once is faster); the other methods of ``ISink`` do nothing until overridden."""

    _name = None

    @property
    def name(self):
        """The class's name unless set (a subclass may also set it as a class attribute)."""
        return self._name or type(self).__name__

    @name.setter
    def name(self, value):
        self._name = value

    def start(self):
        pass

    def record(self, stat):
        raise NotImplementedError(f"{type(self).__name__} writes neither record nor record_many")

    def record_many(self, stats):
        """``record`` each stat; those that raise are counted (``RecordFailed``), the
        others still recorded."""
        failed = 0
        first = None
        record = self.record
        for stat in stats:
            try:
                record(stat)
            except Exception:
                failed += 1
                if first is None:
                    first = Failure()
        if failed:
            raise RecordFailed(failed, first)

    def ready(self):
        return None

    def reopen(self):
        pass

    def close(self):
        pass
