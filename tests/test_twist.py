"""The installed command, run as a user runs it: ``twist statserver ...`` in a subprocess."""

import json
import os
import shutil
import socket
import subprocess

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twistproc import (
    Lines,
    is_json_with,
    json_lines,
    listening_port,
    spawn_twist,
    twist,
)
from wsclient import JSON_FRAME, PROCESS_TIMEOUT, HandshakeFailed, bounded, connect

from statserver import wire


class Notifications(DatagramProtocol):
    """systemd's side of ``$NOTIFY_SOCKET``."""

    def __init__(self):
        self.messages = Lines()

    def datagramReceived(self, data, addr=None):
        self.messages.add(data.decode())


async def start_twist(tmp_path, *args, port="tcp:0:interface=127.0.0.1", launcher=()):
    """``twist statserver --port PORT ARGS`` (run by ``launcher`` if given) with a notify
    socket; returns (process protocol, notifications)."""
    notifications = Notifications()
    listener = reactor.listenUNIXDatagram(str(tmp_path / "notify"), notifications)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    proto = spawn_twist("statserver", "--port", port, *args, env=env, launcher=launcher)
    proto.cleanup = listener.stopListening
    return proto, notifications


async def port_of(proto):
    """The port the server says it listens on."""
    try:
        return await listening_port(proto)
    except Exception:
        proto.kill()
        proto.cleanup()
        raise


@pytest_twisted.ensureDeferred
async def test_receives_a_stat_prints_it_and_stops_on_sigterm(tmp_path):
    proto, notifications = await start_twist(tmp_path, "--stats-log", "-")
    port = await port_of(proto)
    try:
        assert await notifications.messages.first(lambda m: m.startswith("READY=1"))
        client = await connect(port, seconds=PROCESS_TIMEOUT)
        client.sendMessage(JSON_FRAME.encode(), isBinary=False)
        line = await proto.stdout.first(is_json_with("namespace"))
        assert line.startswith("{")
        stat = json.loads(line)
        assert {k: v for k, v in stat.items() if k != "received_at"} == {
            "namespace": "ns-1",
            "name": "rev-1",
            "pod_name": "activator-1",
            "average_concurrent_requests": 1.5,
            "average_proxied_concurrent_requests": 0.0,
            "request_count": 3.0,
            "proxied_request_count": 0.0,
            "process_uptime": 0.0,
            "timestamp": None,
        }
        assert stat["received_at"].endswith("Z")

        proto.process.signalProcess("TERM")
        assert (await bounded(client.closed, PROCESS_TIMEOUT))[1] == 1012
        ended = await bounded(proto.ended, PROCESS_TIMEOUT)
    except BaseException:
        proto.kill()
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0 and ended.signal is None, (ended, proto.stderr.seen)
    assert "STOPPING=1" in notifications.messages.seen
    summaries = [e for e in json_lines(proto.stdout.seen, "log_namespace")
                 if e["log_namespace"] == "statserver.sinks.summary"]
    assert [(e["stats"], e["pods"], e["revisions"]) for e in summaries] == [(1, 1, 1)]
    output = "\n".join(proto.stdout.seen + proto.stderr.seen)
    assert "Traceback" not in output
    assert len(json_lines(proto.stdout.seen, "namespace")) == 1
    started = [e for e in json_lines(proto.stdout.seen, "log_namespace")
               if e.get("implementation")]
    assert [e["implementation"] for e in started] == [wire.IMPLEMENTATION]


@pytest_twisted.ensureDeferred
async def test_sighup_rereads_the_bucket_owners_file(tmp_path):
    owners = tmp_path / "owners"
    owners.write_text("autoscaler-bucket-00-of-02\n")
    bucket_01 = "autoscaler-bucket-01-of-02.knative-serving.svc.cluster.local"
    proto, _ = await start_twist(
        tmp_path, "--bucket-owners-file", str(owners), "--stats-log", str(tmp_path / "s.log")
    )
    port = await port_of(proto)
    try:
        with pytest.raises(HandshakeFailed):
            await connect(port, host=bucket_01, seconds=PROCESS_TIMEOUT)  # not ours
        owners.write_text("autoscaler-bucket-01-of-02\n")
        proto.process.signalProcess("HUP")
        await proto.stdout.first(lambda line: "reloading" in line)
        client = await connect(port, host=bucket_01, seconds=PROCESS_TIMEOUT)  # ours now
        client.sendClose()
        await bounded(client.closed, PROCESS_TIMEOUT)
        proto.process.signalProcess("TERM")
        ended = await bounded(proto.ended, PROCESS_TIMEOUT)
    except BaseException:
        proto.kill()
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="needs systemd-socket-activate"
)
@pytest_twisted.ensureDeferred
async def test_socket_activation(tmp_path):
    # systemd-socket-activate listens and execs twist with the socket as fd 3, named as a
    # socket unit's FileDescriptorName (by default the unit's name) would name it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    launcher = [shutil.which("systemd-socket-activate"), f"--listen=127.0.0.1:{free}",
                "--fdname=statserver.socket"]
    for name in ("PATH", "PYTHONPATH", "NOTIFY_SOCKET", "VIRTUAL_ENV"):
        launcher.append(f"--setenv={name}")
    proto, notifications = await start_twist(
        tmp_path, "--stats-log", "-", port="systemd:domain=INET:name=statserver.socket",
        launcher=launcher,
    )  # fmt: skip
    try:
        await proto.stderr.first(lambda line: line.startswith("Listening on"))
        # Like a socket unit, it starts the server on the first connection.
        client = await connect(free, seconds=PROCESS_TIMEOUT)
        assert await port_of(proto) == free
        assert await notifications.messages.first(lambda m: m.startswith("READY=1"))
        client.sendMessage(JSON_FRAME.encode(), isBinary=False)
        line = await proto.stdout.first(is_json_with("namespace"))
        assert json.loads(line)["name"] == "rev-1"
        proto.process.signalProcess("TERM")
        assert (await bounded(client.closed, PROCESS_TIMEOUT))[1] == 1012
        ended = await bounded(proto.ended, PROCESS_TIMEOUT)
    except BaseException:
        proto.kill()
        raise
    finally:
        await proto.cleanup()
    assert ended.exitCode == 0


def run_twist(*args):
    return subprocess.run(
        twist("statserver", *args), capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args,first_line",
    [
        (["--port", "tcp:notaport"], "Error: invalid --port 'tcp:notaport': "),
        (["--port", "tcp:99999"],
         "Error: invalid --port 'tcp:99999': port 99999 is not between 0 and 65535"),
        (["--queue-size", "-1"], "Error: --queue-size must be a positive whole number, not '-1'"),
        (["--stats-log", "/nonexistent/stats.jsonl"],
         "Error: cannot write --stats-log '/nonexistent/stats.jsonl': No such file or directory"),
    ],
)
def test_bad_options_exit_non_zero_with_a_readable_line(args, first_line):
    result = run_twist(*args)
    assert result.returncode == 64  # EX_USAGE
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith(first_line)
    # Then only twist's synopsis, not the whole option list.
    assert lines[1:] == ["Usage: twist [options] plugin [plugin_options]"]
    assert result.stdout == ""


def test_a_port_in_use_exits_non_zero_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_twist("--port", f"tcp:{port}:interface=127.0.0.1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"statserver: cannot listen on tcp:{port}:interface=127.0.0.1: ")
    assert "in use" in lines[0]
    assert "Traceback" not in result.stdout


@pytest_twisted.ensureDeferred
async def test_a_stuck_stats_log_reader_neither_freezes_the_server_nor_its_sigterm(tmp_path):
    from twisted.internet.defer import Deferred
    from twisted.internet.task import deferLater
    from wsclient import http_get

    from statserver.model import StatMessage
    from statserver.wire import encode_protobuf

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, and never reads
    proto, _ = await start_twist(tmp_path, "--stats-log", str(fifo), "--shutdown-timeout", "1")
    port = await port_of(proto)
    try:
        client = await connect(port, seconds=PROCESS_TIMEOUT)
        frame = encode_protobuf(
            [StatMessage("ns", f"rev-{i}", "pod", request_count=1.0) for i in range(100)])
        for _ in range(20):  # 2,000 stats: about 8 times what the pipe holds
            client.send_frame(frame)

        async def writer_stuck():
            while True:  # the reactor answers while the writer thread is stuck
                code, _, body = await http_get(port, b"/metrics")
                assert code == 200
                if b'statserver_stats_received_total{format="protobuf"} 2000.0' in body and (
                        b"statserver_stats_log_lines_pending 0.0" not in body):
                    return body
                await deferLater(reactor, 0.1, lambda: None)

        await bounded(Deferred.fromCoroutine(writer_stuck()), PROCESS_TIMEOUT)
        code, _, _ = await http_get(port, b"/healthz")
        assert code == 200
        proto.process.signalProcess("TERM")
        # --shutdown-timeout (1 s) plus the stats log's 5 s flush, and a start-up's slack
        ended = await bounded(proto.ended, 20)
    except BaseException:
        proto.kill()
        raise
    finally:
        await proto.cleanup()
        os.close(reader)
    assert ended.exitCode == 0 and ended.signal is None, (ended, proto.stderr.seen)
    output = "\n".join(proto.stdout.seen + proto.stderr.seen)
    assert "lines not written" in output
    assert "Traceback" not in output
