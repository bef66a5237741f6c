"""The contracts between statserver's parts, as ``zope.interface`` interfaces.

- ``IStatsReceiver``: what a WebSocket connection (``statserver.server.protocol``) tells
  the server it belongs to (``statserver.server.service.StatsServer`` provides it).
- ``IStatsConnection``: what the server asks of each connection (backpressure, shutdown).
- ``ISink``: what the consumer (``statserver.sinks.consumer.StatsConsumer``) asks of each
  sink. ``statserver.sinks.base.Sink`` provides it with do-nothing defaults: a new sink
  subclasses it and writes ``record``.
"""

from zope.interface import Attribute, Interface


class IStatsReceiver(Interface):
    """Takes what the sender connections hear; every method is called in the reactor
    thread and must not raise."""

    def connection_opened(connection):
        """The WebSocket of ``connection`` (an ``IStatsConnection``) is open."""

    def frame_received(connection, payload, is_binary):
        """A whole data message arrived on ``connection`` (``payload``: bytes)."""

    def message_too_big(connection, size):
        """``connection`` is being closed with 1009: a message of ``size`` bytes so far
        is over the limit."""

    def connection_refused(connection, reason):
        """``connection`` is being closed by a limit; ``reason`` is the label of
        ``statserver_connections_refused_total``."""

    def connection_closed(connection):
        """The WebSocket of ``connection`` is closed (cleanly or not)."""

    def transport_lost(connection):
        """The TCP connection under ``connection`` is gone."""


class IStatsConnection(Interface):
    """One sender's WebSocket, as its server sees it."""

    peer = Attribute("The peer's address, as text (for log lines).")
    info = Attribute("Its ConnectionInfo (figures for /api/v1/connections), once open.")
    restarting = Attribute("True once the server has sent it close 1012.")

    def pause_reading():
        """Stop reading from the socket (backpressure)."""

    def resume_reading():
        """Read from the socket again."""

    def close_for_restart():
        """Send close 1012 ("service restart") and read on until the peer's reply."""

    def abort():
        """Drop the TCP connection now."""


class ISink(Interface):
    """Where the consumer puts every stat, in queue order."""

    name = Attribute("The name the sink goes by in logs and in statserver_sink_errors_total.")

    def start():
        """Called once, when the consumer starts."""

    def record_many(stats):
        """Take ``stats`` (a list of ``StatMessage``). Raising ``RecordFailed`` counts
        its ``count`` stats as failed; raising anything else counts the whole list."""

    def ready():
        """None when the sink can take more now, else a Deferred that fires once it can
        (the consumer takes nothing meanwhile, so backpressure reaches the senders)."""

    def reopen():
        """Reopen what the sink writes to (SIGHUP, after log rotation)."""

    def close():
        """Called once, after the last ``record_many``; may return a Deferred."""
