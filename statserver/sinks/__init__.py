"""Where the queued ``StatMessage``s go: ``consumer`` takes every stat off
``StatsServer.stats`` and hands it to every sink; ``statslog`` (``--stats-log``, one
JSON line a stat) and ``summary`` (one log line a minute) are sinks, as are
``statserver.aggregation``'s aggregator and ``statserver.dashboard``'s history."""
