"""Paths the rest of the suite left untried: Go's overflowing ``math.Pow``, a revision
whose pods churn past the trim limit, a platform without ``schedstat``, the HTTP channel
refusing a request and a peer that then reads nothing, a disabled header deadline, the
decoder failing inside a big frame, a connection that cannot be dropped at shutdown.
The server ones run in memory, as ``test_failure_paths.py`` does, with its helpers."""

import math

import pytest
from prometheus_client import CollectorRegistry
from test_failure_paths import (  # noqa: F401 (clock is a fixture)
    SERVER_ADDRESS,
    PeerTransport,
    clock,
    connect_through_site,
    make_server,
)
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.test import iosim

from statserver.aggregation import aggregator as aggregator_module
from statserver.aggregation.aggregator import PODS_LIMIT, Aggregator
from statserver.aggregation.windows import RevisionBuckets, go_pow_int
from statserver.bucket_owners import BucketOwners
from statserver.journald import format_with_priority
from statserver.model import RFC3339_MAX_NS, RFC3339_MIN_NS, StatMessage, rfc3339_ns
from statserver.server import lag, service
from statserver.server.lag import ReactorLag
from statserver.text import printable
from statserver.wire import PROTOBUF_PIECE_BYTES, encode_protobuf

S = 1_000_000_000
T0 = 1_700_000_000


# ---- small pure functions ----


def test_go_pow_of_a_huge_power_underflows_to_zero_and_overflows_to_inf():
    # Go's math.Pow(0.5, 20000) is 0 and math.Pow(1.5, 20000) is +Inf: the loop stops
    # squaring once the exponent is out of any float's range
    assert go_pow_int(0.5, 20000) == 0.0
    assert go_pow_int(0.999, 1 << 40) == 0.0
    with pytest.raises(OverflowError):  # Python's ldexp refuses where Go gives +Inf
        go_pow_int(1.5, 20000)
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
    clock = Clock()
    registry = CollectorRegistry()
    reactor_lag = ReactorLag(clock, registry, interval=0.025)
    reactor_lag.start()
    clock.advance(0.025)
    clock.advance(0.325)
    assert reactor_lag.max_stall == pytest.approx(0.3)
    assert registry.get_sample_value("statserver_reactor_stall_max_seconds") == \
        pytest.approx(0.3)
    reactor_lag.stop()


# ---- the aggregator ----


def test_pods_past_the_trim_limit_are_counted_right(aggregator_record_many):
    # More than PODS_LIMIT pods of one revision: the old ones are forgotten as the new
    # ones arrive, and those still in the stable window all count.
    assert aggregator_module.compiled_record_many is aggregator_record_many
    clock = Clock()
    aggregator = Aggregator(clock, stable_window=60)

    def send(second, pods):
        at = (T0 + second) * S
        aggregator.record_many([StatMessage("ns", "rev", f"pod-{p}", 1.0, received_at=at)
                                for p in pods])

    send(0, range(PODS_LIMIT))
    send(1, range(PODS_LIMIT, PODS_LIMIT + 10))  # a trim: nothing old enough to forget
    clock.advance(T0 + 1.5)
    assert aggregator.revision("ns", "rev").pods == PODS_LIMIT + 10

    # two minutes on: a new generation of pods, more than the limit again
    send(120, range(1000, 1000 + PODS_LIMIT + 5))
    clock.advance(119)
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
