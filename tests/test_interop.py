"""Go's own senders against our server: the ``activator`` peer of ``../shared/peer``
(gorilla/websocket, Go's encoding/gob, every Knative era) sends, our StatsServer
delivers exactly what it sent.

Skipped unless ``$STATSERVER_PEER_BIN`` names a directory with the built peers
(``sh ../shared/peer/build.sh DIR``); the ``interop`` tox env sets it.
"""

import json
import os
from pathlib import Path

import pytest
import pytest_twisted
import shared_data
import wsclient
from processes import run_process
from twisted.internet.defer import Deferred
from wsclient import bounded, delivered, ws_url

PEER_BIN = os.environ.get("STATSERVER_PEER_BIN")
ACTIVATOR = Path(PEER_BIN or "/nonexistent") / "activator"

pytestmark = pytest.mark.skipif(
    not ACTIVATOR.is_file(), reason="set STATSERVER_PEER_BIN to a dir with the built Go peers")

TIMEOUT = 30
ERAS = [name.removesuffix(".jsonl") for name in shared_data.ERAS]


async def start_server():
    server = await wsclient.start_server(shutdown_timeout=2.0)
    return server, ws_url(server)


def activator(*args):
    """Run the Go activator: ``(exit code, stdout, stderr)``."""
    return run_process(str(ACTIVATOR), list(args))


def key(d):
    """Comparable form: Go writes 0 for a float64 zero, we hold 0.0."""
    return json.dumps({k: float(v) if isinstance(v, int) else v for k, v in d.items()},
                      sort_keys=True)


@pytest.mark.parametrize("era", ERAS)
@pytest_twisted.ensureDeferred
async def test_go_activator_every_era_is_delivered_exactly(era, tmp_path):
    server, url = await start_server()
    sent_path = tmp_path / "sent.jsonl"
    try:
        code, out, err = await activator("-url", url, "-era", era, "-conns", "3", "-n", "40",
                                         "-batch", "10", "-sent", str(sent_path))
        assert code == 0, out + err
        sent = [json.loads(line) for line in sent_path.read_text().splitlines()]
        assert len(sent) == 120
        # the activator's -sent form is the stat-frames README's, which delivered() gives
        got = [delivered(await bounded(server.stats.get(), 10)) for _ in sent]
        assert sorted(map(key, got)) == sorted(map(key, sent))
        assert not server.stats.pending
    finally:
        await bounded(server.stopService(), TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_go_activator_pings_are_answered():
    server, url = await start_server()
    try:
        code, out, err = await activator("-url", url, "-era", "proto", "-n", "10",
                                         "-batch", "10", "-ping", "200ms")
        assert code == 0, out + err  # it fails with "no pong received" otherwise
        for _ in range(10):
            await bounded(server.stats.get(), TIMEOUT)
    finally:
        await bounded(server.stopService(), TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_go_activator_sees_1012_when_the_server_stops():
    server, url = await start_server()
    try:
        run = Deferred.fromCoroutine(activator("-url", url, "-era", "json", "-n", "5",
                                               "-wait-close", "10s"))
        for _ in range(5):
            await bounded(server.stats.get(), TIMEOUT)
    finally:
        await bounded(server.stopService(), TIMEOUT)
    code, out, err = await run
    assert code == 0, out + err
    assert "close 1012" in out
