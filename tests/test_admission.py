"""The admission step: a stat whose namespace, name or pod name is not a plausible
Kubernetes name is rejected alone, counted by reason and logged (rate-limited, escaped),
whatever its wire format; the rest of its frame and of its connection goes on."""

import json

import pytest
import pytest_twisted
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from protobuf_decoders import compiled as compiled_decoder
from shared_data import ERAS, read_frames
from twisted.internet import reactor
from twisted.internet.task import Clock
from wsclient import bounded, connect, http_get, port_of, start_server, take

from statserver.model import StatMessage
from statserver.ratelimit import RateLimit
from statserver.server import admission
from statserver.sinks.consumer import StatsConsumer
from statserver.tap import _aggregator
from statserver.wire import encode_json, encode_protobuf
from statserver.wire.gobstat import encode_stat_frame

S = 1_000_000_000
GOOD = StatMessage("ns", "good", "activator-1", 2.0, request_count=2.0)


def rejected(server, reason):
    return server.registry.get_sample_value("statserver_stats_rejected_total", {"reason": reason})


def json_frame(namespace, name, pod="p"):
    # json.dumps writes a lone surrogate as the "\ud800" escape a hostile sender writes
    doc = {"Key": {"Namespace": namespace, "Name": name},
           "Stat": {"pod_name": pod, "request_count": 1}}
    return json.dumps(doc).encode("ascii")


class Served:
    """A StatsServer on 127.0.0.1 with the command's aggregator (on /metrics and /api)
    taking its stats, as ``twist statserver`` wires them."""

    async def start(self, **kwargs):
        self.server = await start_server(**kwargs)
        self.aggregator = _aggregator({}, self.server, reactor)
        self.consumer = StatsConsumer(self.server.stats, [self.aggregator], clock=reactor)
        self.consumer.startService()
        return self

    async def get(self, path):
        return await http_get(port_of(self.server), path)

    async def stop(self):
        await bounded(self.server.stopService())
        await bounded(self.consumer.stopService())


async def until_recorded(served, n):
    from wsclient import until

    await bounded(until(lambda: served.consumer.recorded >= n))


@pytest_twisted.ensureDeferred
async def test_names_that_are_not_utf8_are_rejected_and_metrics_still_answer():
    served = await Served().start()
    try:
        client = await connect(port_of(served.server))
        # gob strings are bytes: \xff\xfe is no UTF-8 (decoded as lone surrogates)
        client.send_frame(encode_stat_frame(GOOD._replace(namespace="\udcff\udcfe")))
        client.send_frame(json_frame("ns", "\ud800"), binary=False)
        client.send_frame(encode_stat_frame(GOOD._replace(pod_name="pod-\udcff")))
        client.send_frame(encode_protobuf([GOOD]))
        await until_recorded(served, 1)
        assert [r.name for r in served.aggregator.revisions()] == ["good"]
        assert rejected(served.server, "not_utf8") == 3
        code, _, body = await served.get(b"/metrics")
        assert code == 200
        assert b'statserver_revision_pods{name="good",namespace="ns"} 1.0' in body
        assert b'statserver_stats_rejected_total{reason="not_utf8"} 3.0' in body
        code, _, body = await served.get(b"/api/v1/revisions")
        assert code == 200
        assert [r["name"] for r in json.loads(body)["revisions"]] == ["good"]
        client.sendClose()
        await bounded(client.closed)
    finally:
        await served.stop()


@pytest_twisted.ensureDeferred
async def test_names_longer_than_kubernetes_allows_are_rejected():
    served = await Served().start()
    try:
        client = await connect(port_of(served.server))
        long_ones = [
            GOOD._replace(namespace="n" * 1_000_000),  # one /metrics body of 5 MB before
            GOOD._replace(name="r" * 64),
            GOOD._replace(pod_name="p" * 254),
        ]
        longest_allowed = GOOD._replace(namespace="n" * 63, name="r" * 63, pod_name="p" * 253)
        client.send_frame(encode_protobuf([*long_ones, longest_allowed]))
        await until_recorded(served, 1)
        assert [(len(r.namespace), len(r.name)) for r in served.aggregator.revisions()] == [
            (63, 63)]
        assert rejected(served.server, "too_long") == 3
        code, _, body = await served.get(b"/metrics")
        assert code == 200
        assert len(body) < 20_000
        client.sendClose()
        await bounded(client.closed)
    finally:
        await served.stop()


@pytest.mark.parametrize("fmt", ["protobuf", "json", "gob"])
@pytest_twisted.ensureDeferred
async def test_empty_and_unprintable_names_are_rejected_in_every_format(fmt):
    bad = [
        (GOOD._replace(namespace=""), "empty"),
        (GOOD._replace(name=""), "empty"),
        (GOOD._replace(namespace="ns\n"), "unprintable"),
        (GOOD._replace(name="r\x00"), "unprintable"),
        (GOOD._replace(pod_name="p\x1b[31m"), "unprintable"),
    ]
    server = await start_server()
    try:
        client = await connect(port_of(server))
        for stat, _ in bad:
            if fmt == "protobuf":
                client.send_frame(encode_protobuf([stat]))
            elif fmt == "json":
                client.send_frame(encode_json(stat).encode(), binary=False)
            else:
                client.send_frame(encode_stat_frame(stat))
        client.send_frame(encode_protobuf([GOOD._replace(pod_name="")]))  # no pod: kept
        [got] = await take(server, 1)
        assert (got.namespace, got.name, got.pod_name) == ("ns", "good", "")
        assert rejected(server, "empty") == 2
        assert rejected(server, "unprintable") == 3
        assert server.registry.get_sample_value(
            "statserver_decode_errors_total", {"format": fmt}) == 0
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_protobuf_entries_without_namespace_and_name_are_not_stats():
    server = await start_server()
    try:
        client = await connect(port_of(server))
        empty_entries = b"\x0a\x02\x1a\x00" * 1000  # each an entry with an empty stat
        client.send_frame(empty_entries + encode_protobuf([GOOD]))
        [got] = await take(server, 1)
        assert got.name == "good"
        assert server.stats.pending == []
        assert rejected(server, "empty") == 1000
        assert server.metrics.stats_received.value("protobuf") == 1
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_rejections_are_logged_rate_limited_with_the_value_escaped(logged):
    server = await start_server()
    try:
        client = await connect(port_of(server))
        hostile = GOOD._replace(namespace="\udcff\x07" + "x" * 500)
        for _ in range(100):
            client.send_frame(encode_stat_frame(hostile))  # gob: any bytes
        client.send_frame(encode_protobuf([GOOD]))
        await take(server, 1)
        assert rejected(server, "too_long") == 100
        lines = logged.containing("Rejected a stat")
        assert 1 <= len(lines) <= 10
        line = lines[0]
        line.encode("ascii")  # never raw bytes, nor any non-ASCII character
        assert "from tcp4:127.0.0.1:" in line
        assert "namespace is too long" in line
        assert "'\\udcff\\x07xxx" in line
        assert "(502 characters)" in line
        assert len(line) < 300
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest.mark.parametrize("name", sorted(ERAS))
def test_no_knative_stat_is_rejected(name):
    # every name a Knative sender of every era wrote in tests/data/stat-frames
    registry = CollectorRegistry()
    check = admission.Admission(registry, _AlwaysAllow())
    for frame in read_frames(name):
        for d in frame["stats"]:
            stat = StatMessage(d["namespace"], d["name"], d["pod_name"])
            assert check.admit([stat], "peer") == [stat]
    assert [registry.get_sample_value("statserver_stats_rejected_total", {"reason": r})
            for r in admission.REASONS] == [0] * len(admission.REASONS)


class _AlwaysAllow:
    suppressed = 0

    def allow(self):
        return True


@pytest.mark.parametrize(
    "value,problem",
    [
        ("hello-00001", None),
        ("autoscaler-bucket-00-of-02", None),
        ("a" * 63, None),
        ("a" * 64, "too_long"),
        ("", "empty"),
        ("\udcc3", "not_utf8"),
        ("tab\there", "unprintable"),
        ("zero\u200bwidth", "unprintable"),
        ("café", None),  # plausible enough: valid, printable UTF-8
    ],
)
def test_name_problem(value, problem):
    assert admission.name_problem(value, admission.NAME_MAX) == problem


# ---- the compiled check of a frame's stats (statserver._speedups.admit_all) ----

_SOME_NAMES = st.sampled_from(["ns", "rev-1", "rev-2", "pod-a", "", "\udcff"])


_TIMES = st.none() | st.integers() | st.sampled_from(
    [admission.TIME_MIN, admission.TIME_MIN - 1, admission.TIME_MAX, admission.TIME_MAX + 1,
     0, 1 << 80, -(1 << 80)])


@given(
    stats=st.lists(st.builds(
        lambda ns, name, pod, t: StatMessage(ns, name, pod, 1.0, timestamp=t),
        _SOME_NAMES, _SOME_NAMES, _SOME_NAMES, _TIMES), max_size=8),
    # mostly none: the stats' own names known, so that the times are compared too
    unknown=st.just(set()) | st.sets(_SOME_NAMES, max_size=2),
    unknown_pods=st.just(set()) | st.sets(_SOME_NAMES, max_size=2),
)
@example([StatMessage("ns", "rev", "p", 1.0, timestamp=admission.TIME_MAX)], set(), set())
@example([StatMessage("ns", "rev", "p", 1.0, timestamp=admission.TIME_MIN)], set(), set())
@example([StatMessage("ns", "rev", "p", 1.0, timestamp=admission.TIME_MAX + 1)], set(), set())
@example([StatMessage("ns", "rev", "p", 1.0, timestamp=admission.TIME_MIN - 1)], set(), set())
def test_compiled_admit_all_is_the_pure_one(stats, unknown, unknown_pods):
    compiled = admission.compiled_admit_all() or compiled_decoder()
    names = {s.namespace for s in stats} | {s.name for s in stats} - unknown
    pods = {s.pod_name for s in stats} - unknown_pods
    want = admission.pure_admit_all(stats, names, pods, admission.TIME_MIN, admission.TIME_MAX)
    assert compiled(stats, names, pods, admission.TIME_MIN, admission.TIME_MAX) is want


@pytest.mark.parametrize("which", ["pure", "compiled"])
def test_a_frame_of_known_names_is_admitted_whole_and_others_checked(which, monkeypatch):
    check = (admission.pure_admit_all if which == "pure"
             else admission.compiled_admit_all() or compiled_decoder())
    monkeypatch.setattr(admission, "admit_all", check)
    gate = admission.Admission(CollectorRegistry(), RateLimit(Clock(), 10, 60.0))
    frame = [StatMessage("ns", f"rev-{i}", "pod", 1.0, timestamp=i * S) for i in range(3)]
    assert gate.admit(frame, "peer") == frame  # checked one by one, then known
    assert gate.admit(frame, "peer") is frame  # known: the same list, unchecked
    late = frame + [StatMessage("ns", "rev-0", "pod", 1.0, timestamp=admission.TIME_MAX + 1)]
    admitted = gate.admit(late, "peer")  # a time RFC 3339 cannot write: dropped from its stat
    assert admitted[:3] == frame and admitted[3].timestamp is None
    bad = frame + [StatMessage("ns", "", "pod", 1.0)]
    assert gate.admit(bad, "peer") == frame
    assert gate.rejected.labels(admission.EMPTY)._value.get() == 1
