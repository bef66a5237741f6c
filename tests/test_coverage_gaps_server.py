"""Paths the rest of the suite left untried: Go's overflowing ``math.Pow``, a revision
whose pods churn past the trim limit, a platform without ``schedstat``, the HTTP channel
refusing a request and a peer that then reads nothing, a disabled header deadline, the
decoder failing inside a big frame, a connection that cannot be dropped at shutdown.
The server ones run in memory, as ``test_failure_paths.py`` does, with its helpers."""

import pytest
from prometheus_client import CollectorRegistry
from test_failure_paths import (
    SERVER_ADDRESS,
    PeerTransport,
    SilentPeer,
    advance_to,
    connect_through_site,
    make_server,
    open_link,
)
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.test import iosim

from statserver.aggregation import aggregator as aggregator_module
from statserver.aggregation.aggregator import PODS_LIMIT, Aggregator
from statserver.aggregation.windows import RevisionBuckets, go_pow_int
from statserver.bucket_owners import BucketOwners
from statserver.constants import CLOSE_SERVICE_RESTART
from statserver.journald import format_with_priority
from statserver.model import RFC3339_MAX_NS, RFC3339_MIN_NS, StatMessage, rfc3339_ns
from statserver.server import lag, service
from statserver.server.admission import Admission
from statserver.server.lag import ReactorLag
from statserver.text import printable
from statserver.wire import PROTOBUF_PIECE_BYTES, encode_protobuf

S = 1_000_000_000
T0 = 1_700_000_000


# ---- small pure functions ----


def test_go_pow_of_a_huge_power_underflows_to_zero():
    # Go's math.Pow(0.5, 20000) is 0: the loop stops squaring once the exponent is out
    # of any float's range (the aggregator raises 1 - coeff < 1 to a count of empty
    # buckets; bases over 1, which Go would take to +Inf, are not its case)
    assert go_pow_int(0.5, 20000) == 0.0
    assert go_pow_int(0.999, 1 << 40) == 0.0
    assert go_pow_int(0.5, 1000) == 2.0**-1000  # in range: exact


@pytest.mark.parametrize("stable, panic", [(60, 0), (6, 60), (0, 0)])
def test_revision_buckets_refuse_windows_out_of_order(stable, panic):
    with pytest.raises(ValueError, match="1 <= panic <= stable"):
        RevisionBuckets(stable, panic)


def test_rfc3339_refuses_times_outside_years_1_to_9999():
    assert rfc3339_ns(RFC3339_MAX_NS) == "9999-12-31T23:59:59.999999999Z"
    for ns in (RFC3339_MAX_NS + 1, RFC3339_MIN_NS - 1):
        with pytest.raises(ValueError, match="outside the years"):
            rfc3339_ns(ns)


def test_printable_escapes_control_characters_and_cuts_long_text():
    assert printable("plain text") == "plain text"
    assert printable("bell\x07 and\nnewline") == "bell\\x07 and\\nnewline"
    assert printable("x" * 10, limit=4) == "xxxx..."


def test_an_event_with_no_text_gives_no_journald_line():
    # twist writes nothing for it: no lone "<6>" either
    assert not format_with_priority({"log_time": 0.0, "log_format": None,
                                     "log_level": LogLevel.info})


def test_reload_without_a_file_keeps_the_names_given():
    owners = BucketOwners(["autoscaler-bucket-00-of-01"])
    assert owners.reload() is True
    assert owners.names == {"autoscaler-bucket-00-of-01"}


def test_without_schedstat_a_stall_is_the_whole_lateness(monkeypatch, tmp_path):
    # a kernel without /proc/thread-self/schedstat: no CPU wait to subtract
    monkeypatch.setattr(lag, "_SCHEDSTAT", str(tmp_path / "no-schedstat"))
    timer = Clock()
    registry = CollectorRegistry()
    reactor_lag = ReactorLag(timer, registry, interval=0.025)
    reactor_lag.start()
    timer.advance(0.025)
    timer.advance(0.325)
    assert reactor_lag.max_stall == pytest.approx(0.3)
    assert registry.get_sample_value("statserver_reactor_stall_max_seconds") == \
        pytest.approx(0.3)
    reactor_lag.stop()


# ---- the aggregator ----


def test_pods_past_the_trim_limit_are_counted_right(aggregator_record_many):
    # More than PODS_LIMIT pods of one revision: the old ones are forgotten as the new
    # ones arrive, and those still in the stable window all count.
    assert aggregator_module.compiled_record_many is aggregator_record_many
    timer = Clock()
    aggregator = Aggregator(timer, stable_window=60)

    def send(second, pods):
        at = (T0 + second) * S
        aggregator.record_many([StatMessage("ns", "rev", f"pod-{p}", 1.0, received_at=at)
                                for p in pods])

    send(0, range(PODS_LIMIT))
    send(1, range(PODS_LIMIT, PODS_LIMIT + 10))  # a trim: nothing old enough to forget
    timer.advance(T0 + 1.5)
    assert aggregator.revision("ns", "rev").pods == PODS_LIMIT + 10

    # two minutes on: a new generation of pods, more than the limit again
    send(120, range(1000, 1000 + PODS_LIMIT + 5))
    timer.advance(119)
    assert aggregator.revision("ns", "rev").pods == PODS_LIMIT + 5


# ---- the HTTP channel, in memory ----


class RawPeer(Protocol):
    """A plain TCP peer: keeps what it received."""

    def __init__(self):
        self.received = b""
        self.lost = False

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost = True


class UnreadTransport(PeerTransport):
    """The server's side of a peer that reads nothing: the server's close never
    completes (its answer stays unsent), until it aborts."""

    close_asked = False

    def loseConnection(self):
        self.close_asked = True

    def abortConnection(self):
        self.aborted = True
        iosim.FakeTransport.loseConnection(self)


def raw_link(clock, server, transport=PeerTransport, port=41000):
    client_address = IPv4Address("TCP", "127.0.0.1", port)
    channel = server.site.buildProtocol(client_address)
    peer = RawPeer()
    server_io = transport(channel, isServer=True, hostAddress=SERVER_ADDRESS,
                          peerAddress=client_address)
    client_io = PeerTransport(peer, isServer=False, hostAddress=client_address,
                              peerAddress=SERVER_ADDRESS)
    pump = iosim.connect(channel, server_io, peer, client_io, clock=clock)
    return pump, peer, server_io


def refusals(server, reason):
    return server.registry.get_sample_value("statserver_connections_refused_total",
                                            {"reason": reason})


def test_a_refused_request_reads_nothing_more_and_a_peer_that_reads_nothing_is_aborted(
        clock):
    server = make_server(clock)
    pump, peer, server_io = raw_link(clock, server, UnreadTransport)
    # the refused request's own trailing bytes come in the same read as its headers
    peer.transport.write(b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
                         b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
    pump.flush()
    assert peer.received.startswith(b"HTTP/1.1 400 ")
    assert peer.received.count(b"HTTP/1.1") == 1  # the second request is not answered
    assert server_io.close_asked and not server_io.aborted
    assert refusals(server, "duplicate-host") == 1

    peer.transport.write(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")  # a later read
    pump.flush()
    assert peer.received.count(b"HTTP/1.1") == 1

    clock.advance(14.9)
    pump.flush()
    assert not server_io.aborted
    clock.advance(0.2)  # twisted's abortTimeout, 15 s
    pump.flush()
    assert server_io.aborted and peer.lost
    assert server.site.open_connections == 0


def test_after_a_408_the_rest_of_the_request_is_not_read(clock):
    server = make_server(clock)  # the default header_timeout: 10 s
    pump, peer, server_io = raw_link(clock, server, UnreadTransport)
    peer.transport.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
    pump.flush()
    clock.advance(10)
    pump.flush()
    assert peer.received.startswith(b"HTTP/1.1 408 ")
    assert refusals(server, "header-timeout") == 1
    peer.transport.write(b"X-Late: 1\r\n")  # more headers, late: nothing reads them
    pump.flush()
    clock.advance(15)  # (no new header deadline was started by those bytes)
    pump.flush()
    assert server_io.aborted
    assert peer.received.count(b"HTTP/1.1") == 1
    assert refusals(server, "header-timeout") == 1


def test_a_header_timeout_of_zero_waits_for_slow_headers(clock):
    server = make_server(clock, header_timeout=0)
    pump, peer, server_io = raw_link(clock, server)
    peer.transport.write(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
    pump.flush()
    clock.advance(30)  # three times the default deadline, under the 60 s idle timeout
    pump.flush()
    assert peer.received == b"" and not peer.lost
    peer.transport.write(b"\r\n")
    pump.flush()
    assert peer.received.startswith(b"HTTP/1.1 200 ")
    assert refusals(server, "header-timeout") is None


# ---- the stats server, in memory ----


def big_frame(name, n=2000):
    """A protobuf frame of ``n`` stats of revisions ``name-0``...: sliced, being over
    ``PROTOBUF_PIECE_BYTES``."""
    frame = encode_protobuf([StatMessage("ns", f"{name}-{i}", "pod", 1.0) for i in range(n)])
    assert len(frame) > 2 * PROTOBUF_PIECE_BYTES
    return frame


def send(link, payload):
    link.client.sendMessage(payload, isBinary=True)
    link.pump.flush()


def names(stats):
    return [s.name for s in stats]


def decode_errors(server):
    return server.registry.get_sample_value("statserver_decode_errors_total",
                                            {"format": "protobuf"})


def broken_pieces(payload):
    yield payload[:10]
    raise RuntimeError("piece splitter bug for the test")


def broken_decoder(piece, received_at):
    raise RuntimeError("piece decoder bug for the test")


@pytest.mark.parametrize("patch", [("protobuf_pieces", broken_pieces),
                                   ("decode_protobuf", broken_decoder)],
                         ids=["splitting", "decoding"])
def test_a_decoder_bug_inside_a_big_frame_is_a_bad_frame_and_the_connection_goes_on(
        clock, logged, monkeypatch, patch):
    server = make_server(clock)
    link = connect_through_site(clock, server)
    before = decode_errors(server)
    with monkeypatch.context() as m:
        m.setattr(service, *patch)
        send(link, big_frame("bad"))
        clock.advance(0)
    assert decode_errors(server) == before + 1
    assert server.stats.pending == []
    [event] = [e for e in logged if "Bad frame from" in e.get("log_format", "")]
    assert event["reason"] == "decoder bug"
    assert event["log_failure"].check(RuntimeError)

    send(link, big_frame("good", 1500))  # the connection reads again
    clock.advance(0)
    assert names(server.stats.pending) == [f"good-{i}" for i in range(1500)]
    assert link.client.state == link.client.STATE_OPEN


def test_big_frames_back_to_back_are_decoded_in_order(clock):
    # the second waits behind the first, the third behind the second, then a small one
    server = make_server(clock, queue_size=100_000)
    link = connect_through_site(clock, server)
    for name in ("a", "b", "c"):
        link.client.sendMessage(big_frame(name), isBinary=True)
    link.client.sendMessage(encode_protobuf([StatMessage("ns", "small", "pod", 1.0)]),
                            isBinary=True)
    link.pump.flush()
    clock.advance(0)
    link.pump.flush()
    expected = [f"{name}-{i}" for name in ("a", "b", "c") for i in range(2000)] + ["small"]
    assert names(server.stats.pending) == expected
    assert server.registry.get_sample_value("statserver_frames_total",
                                            {"format": "protobuf"}) == 4


def test_a_big_frame_that_fills_the_queue_holds_the_frames_behind_it(clock):
    # its last piece fills the queue: the small frame behind it waits for room
    server = make_server(clock, queue_size=2000)
    link = connect_through_site(clock, server)
    link.client.sendMessage(big_frame("a"), isBinary=True)
    link.client.sendMessage(encode_protobuf([StatMessage("ns", "after", "pod", 1.0)]),
                            isBinary=True)
    link.pump.flush()
    clock.advance(0)
    assert server.paused
    assert names(server.stats.pending) == [f"a-{i}" for i in range(2000)]

    taken = server.stats.take_all()  # the consumer catches up: the held frame is decoded
    assert names(taken) == [f"a-{i}" for i in range(2000)]
    assert not server.paused
    assert names(server.stats.pending) == ["after"]


def test_a_connection_that_cannot_be_dropped_does_not_stop_the_shutdown(
        clock, logged, monkeypatch):
    server = make_server(clock, shutdown_timeout=1.0)
    link = connect_through_site(clock, server, SilentPeer)

    def abort():
        raise RuntimeError("abort bug for the test")

    monkeypatch.setattr(link.server, "abort", abort)
    done = server.stopService()
    advance_to(clock, 1.1, [link])
    assert done.called
    [event] = [e for e in logged if "Cannot drop" in e.get("log_format", "")]
    assert event["log_failure"].check(RuntimeError)
    assert logged.containing("Stats server stopped")


def test_oversize_messages_past_the_burst_are_counted_and_told_later(clock, logged):
    # ten 1009 lines per 10 s; the first line after says how many were held back
    server = make_server(clock, max_message_size=1000)

    def oversize_from(port):
        link = connect_through_site(clock, server, port=port)
        send(link, b"\x0a" + b"x" * 2000)
        assert link.client.close_code == 1009

    for i in range(12):
        oversize_from(40000 + i)
    assert server.registry.get_sample_value("statserver_oversize_closes_total") == 12
    assert len(logged.containing(" with 1009")) == 10
    clock.advance(10)
    oversize_from(40100)
    lines = logged.containing(" with 1009")
    assert len(lines) == 11 and lines[-1].endswith("(2 more not logged)")


def test_a_cancelled_wait_for_the_shutdown_does_not_break_it(clock):
    # a second stopService() waits for the first; its caller may give up (a timeout)
    server = make_server(clock)
    server.stats.put(StatMessage("ns", "queued", "pod", 1.0))  # the shutdown waits for it
    first = server.stopService()
    second = server.stopService()
    gave_up = []
    second.addErrback(lambda f: gave_up.append(f.check(CancelledError)))
    second.cancel()
    assert gave_up == [CancelledError]
    third = server.stopService()
    server.stats.get()
    clock.advance(0)
    assert first.called and third.called
    assert server.stopService().called  # stopped: at once


def test_a_frame_still_being_decoded_when_the_shutdown_times_out_is_dropped(
        clock, logged, monkeypatch):
    # a decoder that takes a second of the clock per piece: slower than the shutdown
    real_pieces = service.protobuf_pieces

    def slow_pieces(payload):
        for piece in real_pieces(payload):
            clock.rightNow += 1.0
            yield piece

    monkeypatch.setattr(service, "protobuf_pieces", slow_pieces)
    server = make_server(clock, shutdown_timeout=2.0)
    link = connect_through_site(clock, server)
    frame = big_frame("slow", 5000)
    assert len(frame) > 4 * PROTOBUF_PIECE_BYTES
    link.client.sendMessage(frame, isBinary=True)
    link.client.sendMessage(encode_protobuf([StatMessage("ns", "behind", "pod", 1.0)]),
                            isBinary=True)
    link.pump.flush(advanceClock=False)  # received; its decoding starts on the next turn
    done = server.stopService()
    advance_to(clock, 3.0, [link])
    assert done.called
    [warning] = logged.containing("not decoded in time")
    assert "2 frames of 1 connections" in warning
    assert logged.containing("Stats server stopped")
    assert server.stats.pending == []  # a big frame is queued whole or not at all
    assert not logged.containing("Unexpected error decoding")  # stopped, not failed


def test_an_unexpected_error_while_queueing_a_big_frame_is_logged_and_reading_goes_on(
        clock, logged, monkeypatch):
    server = make_server(clock)
    link = connect_through_site(clock, server)
    with monkeypatch.context() as m:
        def admit(self, stats, peer):
            raise RuntimeError("admission bug for the test")

        m.setattr(Admission, "admit", admit)
        send(link, big_frame("bad"))
        clock.advance(0)
    [event] = [e for e in logged
               if "Unexpected error decoding a frame" in e.get("log_format", "")]
    assert event["log_failure"].check(RuntimeError)
    assert server.stats.pending == []

    send(link, big_frame("good", 1500))  # the connection was resumed
    clock.advance(0)
    assert names(server.stats.pending) == [f"good-{i}" for i in range(1500)]


# ---- the WebSocket protocol, in memory ----


class NoKeepAliveTransport(PeerTransport):
    """A stream that is not TCP: keepalive is not an option on it."""

    def setTcpKeepAlive(self, enabled):
        raise OSError(95, "Operation not supported")


def test_a_transport_without_tcp_keepalive_serves_stats(clock):
    server = make_server(clock)
    client_address = IPv4Address("TCP", "127.0.0.1", 42000)
    link = open_link(clock, server.site.buildProtocol(client_address), port=42000,
                     server_transport=NoKeepAliveTransport)
    assert link.client.state == link.client.STATE_OPEN
    send(link, encode_protobuf([StatMessage("ns", "rev", "pod", 1.0)]))
    assert names(server.stats.pending) == ["rev"]


def test_a_connection_already_closing_gets_no_second_close_at_shutdown(clock):
    # closed with 1009, its peer silent: the shutdown's 1012 is not sent on top
    server = make_server(clock, max_message_size=1000, shutdown_timeout=1.0)
    link = connect_through_site(clock, server, SilentPeer)
    send(link, b"\x0a" + b"x" * 2000)
    assert link.client.close_code == 1009
    assert link.server in server.connections  # waiting for the peer's close reply
    link.client.close_code = None
    done = server.stopService()
    advance_to(clock, 1.1, [link])
    assert done.called
    assert link.client.close_code is None


def test_a_ping_that_timed_out_while_paused_is_not_rearmed_by_the_shutdown(clock):
    # paused (queue full) past the ping timeout; the shutdown's 1012 resumes reading:
    # the close handshake, not a fresh ping timeout, ends the connection
    server = make_server(clock, queue_size=1, ping_interval=10.0, shutdown_timeout=30.0)
    link = connect_through_site(clock, server, SilentPeer)
    send(link, encode_protobuf([StatMessage("ns", "rev", "pod", 1.0)]))
    assert server.paused
    advance_to(clock, 10 + 21 + 0.1, [link])
    assert link.server.ping_timed_out_while_paused
    assert len(server.connections) == 1  # not dropped while it could not read the pong
    done = server.stopService()
    link.pump.flush()
    assert link.client.close_code == CLOSE_SERVICE_RESTART
    assert not link.server.reading_paused
    assert link.server.autoPingTimeoutCall is None
    server.stats.take_all()  # the consumer takes the queued stat
    advance_to(clock, 31.1 + 30.5, [link])
    assert done.called
