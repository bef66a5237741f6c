"""The --stats-log sink: one JSON object per stat per line, written by a thread of its
own; a reader that does not keep up pushes back on the consumer and never blocks the
reactor."""

import io
import json
import os
import threading

import pytest_twisted
from prometheus_client import CollectorRegistry, generate_latest
from stats import T, nth
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, DeferredQueue
from twisted.internet.task import deferLater
from wsclient import bounded, until

from statserver.sinks.consumer import StatsConsumer
from statserver.sinks.statslog import StatsLog


@pytest_twisted.ensureDeferred
async def test_lines_are_written_every_flush_interval(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=reactor, flush_interval=0.5)
    log.start()
    log.record(nth(1))
    log.record(nth(2, timestamp=T + 123_456_000))
    await bounded(until(path.exists))  # the writer thread opens it at start
    assert path.read_text() == ""  # gathered, not yet handed to the writer
    await bounded(until(lambda: log.lines_written == 2))
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [nth(1).to_dict(), nth(2).to_dict() | {
        "timestamp": "2023-11-14T22:13:20.123456Z"}]
    assert json.loads(lines[0]) == {
        "namespace": "ns",
        "name": "rev-1",
        "pod_name": "activator-0",
        "average_concurrent_requests": 1.5,
        "average_proxied_concurrent_requests": 0.0,
        "request_count": 1.0,
        "proxied_request_count": 0.0,
        "process_uptime": 0.0,
        "timestamp": None,
        "received_at": "2023-11-14T22:13:21Z",
    }
    log.record(nth(3))
    await bounded(until(lambda: log.lines_written == 3))
    assert len(path.read_text().splitlines()) == 3
    await bounded(log.close())


@pytest_twisted.ensureDeferred
async def test_close_writes_what_is_buffered(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"earlier": 1}\n')
    log = StatsLog(str(path), reactor=reactor)
    log.start()
    log.record(nth(1))
    await bounded(log.close())
    lines = path.read_text().splitlines()
    assert lines == ['{"earlier": 1}', nth(1).to_json()]  # appended, never truncated


@pytest_twisted.ensureDeferred
async def test_a_full_buffer_is_handed_over_at_once(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=reactor, max_buffered=3, flush_interval=3600)
    log.start()
    for i in range(3):
        log.record(nth(i))
    await bounded(until(lambda: log.lines_written == 3))
    assert len(path.read_text().splitlines()) == 3
    await bounded(log.close())


@pytest_twisted.ensureDeferred
async def test_stdout_is_the_process_stdout(capfd, monkeypatch):
    # twist points sys.stdout at its log; "-" still means the real standard output.
    monkeypatch.setattr("sys.stdout", io.StringIO())
    log = StatsLog("-", reactor=reactor)
    log.start()
    log.record(nth(1))
    await bounded(log.close())
    assert capfd.readouterr().out == nth(1).to_json() + "\n"


@pytest_twisted.ensureDeferred
async def test_reopen_after_rotation(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=reactor)
    log.start()
    log.record(nth(1))
    await bounded(until(lambda: path.exists()))  # the writer opens the file on first use
    log.flush()
    await bounded(until(lambda: log.lines_written == 1))
    path.rename(tmp_path / "stats.jsonl.1")  # logrotate moves the file, then SIGHUP
    log.reopen()
    log.record(nth(2))
    await bounded(log.close())
    assert (tmp_path / "stats.jsonl.1").read_text() == nth(1).to_json() + "\n"
    assert path.read_text() == nth(2).to_json() + "\n"


@pytest_twisted.ensureDeferred
async def test_a_failing_write_is_counted_not_raised():
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    registry = CollectorRegistry()
    log = StatsLog("/dev/full", reactor=reactor, flush_interval=0.05, registry=registry)
    log.start()
    log.record(nth(1))
    log.record(nth(2))
    await bounded(until(lambda: log.lines_lost == 2))
    log.record(nth(3))  # the periodic flush keeps running
    await bounded(until(lambda: log.lines_lost == 3))
    assert log.lines_written == 0
    assert b"statserver_stats_log_lines_lost_total 3.0" in generate_latest(registry)
    await bounded(log.close())


@pytest_twisted.ensureDeferred
async def test_a_file_that_cannot_be_opened_is_counted_not_raised(tmp_path):
    log = StatsLog(str(tmp_path / "gone" / "stats.jsonl"), reactor=reactor, flush_interval=0.05)
    log.start()
    log.record(nth(1))
    await bounded(until(lambda: log.lines_lost == 1))
    await bounded(log.close())


class StuckReader:
    """A FIFO whose reader reads nothing until ``drain()``: a write that fills the pipe
    blocks, as on a slow disk or NFS."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "fifo")
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.read = b""
        self.draining = False

    def drain(self):
        """Read everything, in a thread, until ``stop()``."""
        self.draining = True
        os.set_blocking(self.fd, True)
        self._thread = threading.Thread(target=self._read_all, daemon=True)
        self._thread.start()

    def _read_all(self):
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return
            self.read += chunk

    def close(self):
        os.close(self.fd)


@pytest_twisted.ensureDeferred
async def test_a_stuck_reader_never_blocks_the_reactor_and_pushes_back(tmp_path):
    reader = StuckReader(tmp_path)
    try:
        queue = DeferredQueue()
        log = StatsLog(reader.path, reactor=reactor, max_buffered=100, max_pending=1000,
                       flush_interval=3600)
        consumer = StatsConsumer(queue, [log], clock=reactor)
        consumer.startService()
        for i in range(200):  # ~5 MB of lines, 100 a reactor turn: far more than the pipe holds
            for j in range(100):
                queue.put(nth(i * 100 + j))
            await deferLater(reactor, 0.001, lambda: None)
        # the consumer took until the writer fell max_pending (1000) behind, then waited
        # for it to catch up to half of that: the rest stays queued (where the server's
        # backpressure pauses the senders). The pipe took a few hundred lines before the
        # writer stuck, so more than half stay with it however the turns fell
        await bounded(until(lambda: log.lines_pending > 500))
        assert not reader.draining  # the reactor ran on while the writer was stuck
        assert len(queue.pending) > 15000
        reader.drain()
        await bounded(until(lambda: not queue.pending and log.lines_pending == 0), 30)
        await bounded(consumer.stopService())
        assert log.lines_lost == 0
        await bounded(until(lambda: reader.read.count(b"\n") == 20000))
        names = [json.loads(line)["name"] for line in reader.read.splitlines()]
        assert names == [f"rev-{i}" for i in range(20000)]  # every one, in order
    finally:
        reader.close()


@pytest_twisted.ensureDeferred
async def test_close_gives_up_on_a_stuck_reader_after_its_timeout_and_counts_the_lines(
        tmp_path):
    reader = StuckReader(tmp_path)
    registry = CollectorRegistry()
    log = StatsLog(reader.path, reactor=reactor, close_timeout=0.5, registry=registry)
    log.start()
    for i in range(5000):
        log.record(nth(i))
    try:
        await bounded(log.close(), 5)
        assert log.lines_lost > 0
        assert log.lines_written + log.lines_lost == 5000
        assert b"statserver_stats_log_lines_lost_total" in generate_latest(registry)
    finally:
        reader.close()  # the stuck write fails (EPIPE): the writer thread ends


@pytest_twisted.ensureDeferred
async def test_reopen_of_stdout_keeps_writing_to_stdout(capfd, monkeypatch):
    # SIGHUP reopens the log file; "-" is not a file to reopen
    monkeypatch.setattr("sys.stdout", io.StringIO())
    log = StatsLog("-", reactor=reactor)
    log.start()
    log.record(nth(1))
    log.reopen()
    log.record(nth(2))
    await bounded(log.close())
    assert capfd.readouterr().out == nth(1).to_json() + "\n" + nth(2).to_json() + "\n"
    assert log.lines_written == 2 and log.lines_lost == 0


@pytest_twisted.ensureDeferred
async def test_a_log_that_got_nothing_closes_at_once(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=reactor)
    assert log.close().called  # never started either
    assert not path.exists()
    log = StatsLog(str(path), reactor=reactor)
    log.start()  # the writer opens the file
    await bounded(log.close())
    assert log.close().called  # closing twice is harmless
    assert path.read_text() == ""


@pytest_twisted.ensureDeferred
async def test_a_cancelled_wait_for_room_does_not_keep_the_others_waiting(tmp_path):
    # the consumer cancels its wait when it stops; another waiter still gets the room
    log = StatsLog(str(tmp_path / "stats.jsonl"), reactor=reactor, max_pending=10,
                   flush_interval=3600)
    log.start()
    for i in range(10):
        log.record(nth(i))
    log.flush()  # ten lines with the writer: full until it has written five
    given_up, waiting = log.ready(), log.ready()
    assert given_up is not None and waiting is not None
    given_up.addErrback(lambda f: f.trap(CancelledError))
    given_up.cancel()
    await bounded(waiting)
    assert log.ready() is None
    await bounded(log.close())
    assert log.lines_written == 10
