"""Go's own sender against our server: ``peers/activator`` (gorilla/websocket, Go's
encoding/gob, every Knative era) sends, our StatsServer delivers exactly what it sent.

The Go refserver (the benchmark's reference) must count what the activator sends.

The peers are built once a session by ``peers/build.sh`` into a temporary directory
(``$STATSERVER_PEER_BIN`` names a directory of already built ones instead); where Debian's
Go is not installed the tests skip and say so.
"""

import json
import os
import re

import pytest
import pytest_twisted
import shared_data
from processes import go_peers, run_process
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twistproc import Twist
from wsclient import PROCESS_TIMEOUT, bounded, delivered, http_get, start_server, ws_url

from statserver.gob import GoOpaque, decode

ERAS = [name.removesuffix(".jsonl") for name in shared_data.ERAS]


@pytest.fixture(scope="session")
def peer_bin(tmp_path_factory):
    """The directory of the built ``activator`` and ``refserver``."""
    return go_peers(tmp_path_factory.mktemp("peer-bin"))


@pytest.fixture(scope="session")
def activator(peer_bin):
    """Run the Go activator with some arguments: ``(exit code, stdout, stderr)``."""
    return lambda *args: run_process(str(peer_bin / "activator"), list(args))


def key(d):
    """Comparable form: Go writes 0 for a float64 zero, we hold 0.0."""
    return json.dumps({k: float(v) if isinstance(v, int) else v for k, v in d.items()},
                      sort_keys=True)


def shape(value):
    """Field names and kinds of a gob value decoded without a target (which fills in the
    fields a frame leaves out)."""
    if isinstance(value, dict):
        return {name: shape(v) for name, v in value.items()}
    if isinstance(value, GoOpaque):
        return f"opaque {value.kind}"
    return type(value).__name__


@pytest.mark.parametrize("era", shared_data.GOB_ERAS)
@pytest_twisted.ensureDeferred
async def test_go_activator_gob_frames_have_the_reference_frames_shape(activator, era):
    # the delivery test below cannot tell a wrong era shape that we happen to decode
    code, out, err = await activator("-dump", "-era", era, "-n", "1")
    assert code == 0, out + err
    ours = decode(bytes.fromhex(json.loads(out)["frame"]))
    reference = decode(shared_data.read_frames(f"{era}.jsonl")[0]["payload"])
    assert shape(ours) == shape(reference)


@pytest.mark.parametrize("era", ERAS)
@pytest_twisted.ensureDeferred
async def test_go_activator_every_era_is_delivered_exactly(activator, era, tmp_path):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    sent_path = tmp_path / "sent.jsonl"
    try:
        code, out, err = await activator("-url", url, "-era", era, "-conns", "4", "-n", "40",
                                         "-batch", "10", "-sent", str(sent_path))
        assert code == 0, out + err
        sent = [json.loads(line) for line in sent_path.read_text().splitlines()]
        assert len(sent) == 160
        # the activator's -sent form is the stat-frames README's, which delivered() gives
        got = [delivered(await bounded(server.stats.get(), 10)) for _ in sent]
        assert sorted(map(key, got)) == sorted(map(key, sent))
        assert not server.stats.pending
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_go_activator_pings_are_answered(activator):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    try:
        code, out, err = await activator("-url", url, "-era", "proto", "-n", "10",
                                         "-batch", "10", "-ping", "200ms")
        assert code == 0, out + err  # it fails with "no pong received" otherwise
        assert re.search(r"\b[1-9][0-9]* pongs\b", out), out
        for _ in range(10):
            await bounded(server.stats.get(), PROCESS_TIMEOUT)
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_go_activator_sees_1012_when_the_server_stops(activator):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    try:
        run = Deferred.fromCoroutine(activator("-url", url, "-era", "json", "-n", "5",
                                               "-wait-close", "10s"))
        for _ in range(5):
            await bounded(server.stats.get(), PROCESS_TIMEOUT)
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)
    code, out, err = await run
    assert code == 0, out + err
    assert "close 1012" in out


@pytest_twisted.ensureDeferred
async def test_go_activator_answers_the_servers_pings(activator):
    # pings every 0.2 s, 1.4 s to answer: a peer that did not answer would be dropped
    server = await start_server(shutdown_timeout=2.0, ping_interval=0.2)
    url = ws_url(server)
    try:
        code, out, err = await activator("-url", url, "-era", "v12", "-n", "5",
                                         "-wait-close", "3s")
        assert code == 0, out + err
        assert "close none" in out, out  # still open after 3 s: then it closed with 1000
        for _ in range(5):
            await bounded(server.stats.get(), PROCESS_TIMEOUT)
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)


def metric(body, name):
    return float(re.search(rb"^%s (\S+)$" % name.encode(), body, re.M).group(1))


@pytest.mark.parametrize(("fmt", "era", "rejected_era"), [("gob", "seed", "v02"),
                                                          ("proto", "proto-ts", "v10")])
@pytest_twisted.ensureDeferred
async def test_refserver_counts_every_stat_and_rejects_other_eras(peer_bin, activator, fmt, era,
                                                                  rejected_era):
    # ingest.py's rates against the Go server mean nothing if it does not count every stat
    refserver = Twist()
    path = str(peer_bin / "refserver")
    refserver.process = reactor.spawnProcess(
        refserver, path, [path, "-addr", "127.0.0.1:0", "-format", fmt], env=os.environ)
    try:
        line = await refserver.stdout.first(lambda line: "listening on" in line)
        address = re.search(r"listening on (127\.0\.0\.1:\d+),", line).group(1)
        url = f"ws://{address}/"
        # the last ping's pong comes after the refserver has decoded every frame before it
        code, out, err = await activator("-url", url, "-era", era, "-conns", "3", "-n", "50",
                                         "-batch", "7", "-ping", "1s")
        assert code == 0, out + err
        code, out, err = await activator("-url", url, "-era", rejected_era, "-n", "4",
                                         "-ping", "1s")
        assert code == 0, out + err
        status, _, body = await http_get(int(address.rsplit(":", 1)[1]), b"/metrics")
        assert status == 200
        assert metric(body, "statserver_stats_received_total") == 150
        assert metric(body, "refserver_frames_rejected_total") == 4
        refserver.process.signalProcess("TERM")
        assert isinstance(await bounded(refserver.ended, PROCESS_TIMEOUT), ProcessDone)
    finally:
        refserver.kill()
