"""statserver-load, run as a user runs it, against a real StatsServer on 127.0.0.1."""

import re
import sys

import pytest
import pytest_twisted
from processes import run_process
from wsclient import PROCESS_TIMEOUT, bounded, start_server, take, ws_url

_END = re.compile(r"sent (\d+) stats in ([\d.]+)s: (\d+) stats/s \((\d+) connections, (\w+)\)")


def load(*args):
    """Run statserver-load; return (exit code, stdout, stderr)."""
    return run_process(sys.executable, ["-m", "statserver.load", *args], PROCESS_TIMEOUT)


async def take_all(server, n):
    got = await take(server, n)
    assert not server.stats.pending  # nothing more than was reported
    return got


@pytest.mark.parametrize(("fmt", "extra", "connections", "per_conn"), [
    ("json", [], 2, 50),
    ("protobuf", ["--batch", "7"], 3, 20),  # 20 = 2 frames of 7 and one of 6
    ("gob", [], 2, 30),
    ("protobuf", ["--batch", "10", "--processes", "2"], 3, 40),
])
@pytest_twisted.ensureDeferred
async def test_a_small_run_delivers_what_it_reports(fmt, extra, connections, per_conn):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    try:
        code, out, err = await load("--url", url, "--format", fmt, "--connections",
                                    str(connections), "--stats", str(per_conn), *extra)
        assert code == 0, err
        m = _END.search(out)
        assert m, out
        total = connections * per_conn
        assert int(m.group(1)) == total
        assert (int(m.group(4)), m.group(5)) == (connections, fmt)
        assert float(m.group(2)) > 0 and int(m.group(3)) > 0
        stats = await take_all(server, total)
        # A few revisions and pods, as from real activators.
        assert 1 < len({s.key for s in stats}) <= 24
        assert len({s.pod_name for s in stats}) == connections
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_rate_and_duration_pace_the_run():
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    try:
        # 100 stats/s for 0.6 s: about 60 stats, and never faster than the rate allows.
        code, out, err = await load("--url", url, "--format", "json", "--connections", "1",
                                    "--rate", "100", "--duration", "0.6")
        assert code == 0, err
        m = _END.search(out)
        sent, seconds = int(m.group(1)), float(m.group(2))
        assert seconds >= 0.55
        assert 20 <= sent <= 100 * seconds + 2
        await take_all(server, sent)
    finally:
        await bounded(server.stopService(), PROCESS_TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_a_closed_port_fails_with_one_line_per_connection():
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    await bounded(server.stopService(), PROCESS_TIMEOUT)  # now nobody listens there
    code, out, err = await load("--url", url, "--format", "json", "--connections", "2",
                                "--stats", "5")
    assert code == 1
    assert "sent 0 stats" in out
    lines = err.strip().splitlines()
    assert lines[-1] == "statserver-load: 2 of 2 connections failed"
    assert sum("cannot connect to " + url in line for line in lines) == 2


@pytest_twisted.ensureDeferred
async def test_bad_arguments_exit_2():
    code, out, err = await load("--connections", "0")
    assert code == 2
    assert "--connections must be at least 1" in err
