"""Python's cyclic garbage collector, kept from stalling a server of many connections.

A full collection scans every live container object, and an open WebSocket is about 30
of them: at 3,000 connections one full collection held the reactor for 40-100 ms
(benchmarks/README.md, the connect storm). :class:`FreezeSurvivors`

- freezes (``gc.freeze()``) what survives each full collection, so that the next one
  scans only what was made since;
- lets a full collection follow every second collection of the middle generation rather
  than every eleventh (Python's default), by which a connect storm had made 80,000 new
  objects to scan at once. Python's other condition, a quarter's growth since the last
  full collection, still holds and now counts from what that one scanned.

A frozen object is never freed by the collector, only by reference counting. That is
sound because what the server lets go of (a closed connection, a finished request, a
dashboard viewer, an expired revision) holds no reference cycle, which
``tests/test_teardown.py`` checks with the collector off. Were something to leak that
way, ``statserver_gc_frozen_objects`` would show it growing; ``--gc-freeze start`` turns
this off (only what the imports made is frozen, once).
"""

import gc

from prometheus_client import Gauge

OLDEST = 2  # the generation a full collection collects
FULL_EVERY = 1  # gc threshold 2: a full collection after more than this many middle ones


class FreezeSurvivors:
    """Freezes what survives every full collection, from ``start`` to ``stop``."""

    def __init__(self, registry=None):
        self.freezes = 0  # full collections whose survivors were frozen
        self._installed = False
        self._thresholds = None
        if registry is not None:
            Gauge("statserver_gc_frozen_objects",
                  "Objects the cyclic garbage collector no longer scans (gc.freeze: "
                  "what survived its full collections); freed by reference counting only",
                  registry=registry).set_function(gc.get_freeze_count)

    def start(self, after_full_collections=True):
        """Collect and freeze once now (what the imports made), then, unless
        ``after_full_collections`` is false (``--gc-freeze start``), after every full
        collection."""
        gc.collect()
        gc.freeze()
        if after_full_collections and not self._installed:
            gc.callbacks.append(self._collected)
            self._thresholds = gc.get_threshold()
            gc.set_threshold(self._thresholds[0], self._thresholds[1], FULL_EVERY)
            self._installed = True

    def stop(self):
        """Stop freezing; the collector's thresholds are as before. What is frozen stays
        frozen: unfreezing would make the next full collection scan all of it at once."""
        if self._installed:
            gc.callbacks.remove(self._collected)
            gc.set_threshold(*self._thresholds)
            self._installed = False

    def _collected(self, phase, info):
        # "stop" of a full collection: what is left is live and no cyclic garbage is
        # pending, so nothing unreachable gets frozen with it
        if phase == "stop" and info["generation"] == OLDEST:
            gc.freeze()
            self.freezes += 1
