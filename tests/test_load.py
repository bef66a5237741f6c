"""statserver-load, run as a user runs it, against a real StatsServer on 127.0.0.1; then
its connections in this process against bare autobahn servers that refuse, close early
or stop reading."""

import io
import re
import sys

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from processes import run_process
from twisted.internet import defer, endpoints, reactor
from wsclient import PROCESS_TIMEOUT, bounded, start_server, take, until, ws_url

from statserver import load as load_module
from statserver.load import ConnectionFailed, parse_args, run_connection

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


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest_twisted.ensureDeferred
async def test_a_closed_port_fails_with_one_line_per_connection(processes):
    server = await start_server(shutdown_timeout=2.0)
    url = ws_url(server)
    await bounded(server.stopService(), PROCESS_TIMEOUT)  # now nobody listens there
    code, out, err = await load("--url", url, "--format", "json", "--connections", "2",
                                "--stats", "5", "--processes", processes)
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


@pytest_twisted.ensureDeferred
async def test_main_parses_the_argv_it_is_given():
    code, out, err = await run_process(sys.executable, [
        "-c", "import sys; sys.argv[1:] = ['--connections', '0']; "
              "from statserver.load import main; main(['--batch', '0'])"])
    assert code == 2
    assert "--batch must be at least 1" in err and "--connections" not in err.splitlines()[-1]


# -- one connection, in this process, against a bare autobahn server --


class _Peer(WebSocketServerProtocol):
    def onConnect(self, request):
        if self.factory.deny:
            raise ConnectionDeny(403, "no load here")

    def onOpen(self):
        self.factory.peers.append(self)
        if self.factory.deaf:
            self.transport.pauseProducing()

    def onMessage(self, payload, isBinary):
        self.factory.messages += 1
        if self.factory.messages == self.factory.drop_after:
            self.dropConnection(abort=True)  # as a server that crashes


async def bare_server(deny=False, deaf=False, drop_after=None):
    factory = WebSocketServerFactory()
    factory.protocol = _Peer
    factory.deny, factory.deaf, factory.drop_after = deny, deaf, drop_after
    factory.peers, factory.messages = [], 0
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    return port, factory, f"ws://127.0.0.1:{port.getHost().port}/"


@pytest_twisted.ensureDeferred
async def test_a_refused_handshake_fails_the_connection_saying_so():
    port, _, url = await bare_server(deny=True)
    try:
        args = parse_args(["--url", url, "--format", "json", "--stats", "5"])
        with pytest.raises(ConnectionFailed, match="the WebSocket handshake failed: "):
            await bounded(defer.ensureDeferred(run_connection(reactor, args, 0, 0, [])))
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_server_lost_mid_run_fails_the_connection_with_what_was_sent():
    port, factory, url = await bare_server(drop_after=3)
    try:
        # 20 stats a second: one a tick at first, then ticks with none due.
        args = parse_args(["--url", url, "--format", "json", "--stats", "1000", "--rate", "20"])
        senders = []
        with pytest.raises(ConnectionFailed,
                           match=r"the connection closed after \d+ stats: .*peer dropped the TCP") as e:
            await bounded(defer.ensureDeferred(run_connection(reactor, args, 0, 0, senders)))
        sent = int(re.search(r"after (\d+) stats", str(e.value)).group(1))
        assert 3 <= sent < 1000 and senders[0].sent == sent
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_paced_run_stops_writing_while_the_server_does_not_read():
    port, factory, url = await bare_server(deaf=True)
    # 1000 stats a tick, more than Twisted buffers before it pauses the sender.
    args = parse_args(["--url", url, "--format", "json", "--rate", "100000",
                       "--stats", "100000000"])
    senders = []
    d = defer.ensureDeferred(run_connection(reactor, args, 0, 0, senders))
    try:
        # Once the kernel's buffers are full too, the sender stays paused: 50 ms (five
        # ticks) in which it is paused and sends nothing.
        seen = []

        def paused_and_idle():
            sender = senders[0] if senders else None
            now = None if sender is None else (sender.paused, sender.sent)
            idle = bool(seen) and now == seen[-1] and now[0]
            seen.append(now)
            return idle

        await bounded(until(paused_and_idle, interval=0.05))
        held = senders[0].sent
        assert 0 < held < 100000000
        factory.peers[0].dropConnection(abort=True)
        with pytest.raises(ConnectionFailed, match=f"the connection closed after {held} stats: "):
            await bounded(d)
    finally:
        for peer in factory.peers:
            peer.dropConnection(abort=True)
        await port.stopListening()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest_twisted.ensureDeferred
async def test_on_a_terminal_progress_is_shown_every_half_second(monkeypatch):
    port, _, url = await bare_server()
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    try:
        args = parse_args(["--url", url, "--format", "json", "--connections", "1",
                           "--rate", "100", "--duration", "0.7"])
        code = await bounded(defer.ensureDeferred(load_module._single(reactor, args)))
    finally:
        await port.stopListening()
    assert code == 0
    text = out.getvalue()
    assert re.match(r"\rsent \d+ stats in 0\.\ds \(\d+ stats/s\)  \n", text), text
    assert _END.search(text.splitlines()[-1])


@pytest_twisted.ensureDeferred
async def test_a_worker_process_that_dies_is_one_failure(capsys):
    # A worker given an argument it refuses dies before it reports, as a crashed one does.
    args = parse_args(["--connections", "2", "--processes", "2"])
    code = await bounded(defer.ensureDeferred(
        load_module._parent(reactor, args, ["--connections", "2", "--no-such-option"])),
        PROCESS_TIMEOUT)
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("unrecognized arguments: --no-such-option") == 2  # the workers' stderr
    assert err.count("statserver-load: a worker process failed (exit code 2)") == 2
    assert err.splitlines()[-1] == "statserver-load: 2 of 2 connections failed"
