"""The --stats-log sink: one JSON object per stat per line, flushed every second."""

import io
import json

from twisted.internet.task import Clock

from statserver.model import StatMessage
from statserver.statslog import StatsLog

SECOND = 1_000_000_000
T = 1_700_000_000 * SECOND


def stat(i, **kw):
    return StatMessage(
        "ns", f"rev-{i}", "activator-0", average_concurrent_requests=1.5, request_count=float(i),
        received_at=T + i * SECOND, **kw,
    )  # fmt: skip


def test_lines_are_flushed_within_a_second(tmp_path):
    path = tmp_path / "stats.jsonl"
    clock = Clock()
    log = StatsLog(str(path), reactor=clock)
    log.start()
    log.record(stat(1))
    log.record(stat(2, timestamp=T + 123_456_000))
    assert path.read_text() == ""  # buffered
    clock.advance(1.0)
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [stat(1).to_dict(), stat(2).to_dict() | {
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
    log.record(stat(3))
    clock.advance(1.0)
    assert len(path.read_text().splitlines()) == 3
    assert log.lines_written == 3
    log.close()


def test_close_writes_what_is_buffered(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"earlier": 1}\n')
    log = StatsLog(str(path), reactor=Clock())
    log.start()
    log.record(stat(1))
    log.close()
    lines = path.read_text().splitlines()
    assert lines == ['{"earlier": 1}', stat(1).to_json()]  # appended, never truncated


def test_a_full_buffer_is_written_at_once(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=Clock(), max_buffered=3)
    log.start()
    for i in range(3):
        log.record(stat(i))
    assert len(path.read_text().splitlines()) == 3
    log.close()


def test_stdout_is_the_process_stdout(capfd, monkeypatch):
    # twist points sys.stdout at its log; "-" still means the real standard output.
    monkeypatch.setattr("sys.stdout", io.StringIO())
    log = StatsLog("-", reactor=Clock())
    log.start()
    log.record(stat(1))
    log.close()
    assert capfd.readouterr().out == stat(1).to_json() + "\n"


def test_reopen_after_rotation(tmp_path):
    path = tmp_path / "stats.jsonl"
    log = StatsLog(str(path), reactor=Clock())
    log.start()
    log.record(stat(1))
    path.rename(tmp_path / "stats.jsonl.1")  # logrotate moves the file, then SIGHUP
    log.reopen()
    log.record(stat(2))
    log.close()
    assert (tmp_path / "stats.jsonl.1").read_text() == stat(1).to_json() + "\n"
    assert path.read_text() == stat(2).to_json() + "\n"


def test_a_failing_write_is_counted_not_raised(tmp_path):
    # /dev/full: every write fails with ENOSPC, as on a full disk.
    clock = Clock()
    log = StatsLog("/dev/full", reactor=clock)
    log.start()
    log.record(stat(1))
    log.record(stat(2))
    clock.advance(1.0)
    assert log.lines_lost == 2
    log.record(stat(3))
    clock.advance(1.0)  # the periodic flush keeps running
    assert log.lines_lost == 3
    assert log.lines_written == 0
    log.close()


def test_a_file_that_cannot_be_opened_is_counted_not_raised(tmp_path):
    clock = Clock()
    log = StatsLog(str(tmp_path / "gone" / "stats.jsonl"), reactor=clock)
    log.start()
    log.record(stat(1))
    clock.advance(1.0)
    assert log.lines_lost == 1
    log.close()
