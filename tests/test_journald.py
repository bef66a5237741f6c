"""Log levels reach journald: under systemd (``$JOURNAL_STREAM`` naming the log stream)
twist's text lines carry ``<N>`` syslog priorities; elsewhere they do not."""

import os
import re

import pytest_twisted
from twisted.logger import LogLevel
from twistproc import spawn_twist
from wsclient import PROCESS_TIMEOUT, bounded, connect

from statserver.journald import format_with_priority, is_journal_stream

# systemd sets $JOURNAL_STREAM to the DEVICE:INODE of the stream it gives the service;
# this launcher does the same for the pipe twist's stderr is.
AS_SYSTEMD = ("sh", "-c", 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"', "sh")


def test_each_line_of_an_event_gets_its_level():
    event = {"log_level": LogLevel.warn, "log_format": "one\ntwo", "log_time": 0.0,
             "log_namespace": "n", "log_system": "-"}
    lines = format_with_priority(event).splitlines()
    assert len(lines) == 2 and all(line.startswith("<4>") for line in lines)
    assert format_with_priority(dict(event, log_level=LogLevel.critical)).startswith("<2>")
    assert format_with_priority(dict(event, log_level=LogLevel.debug)).startswith("<7>")


def test_journal_stream_is_matched_by_device_and_inode(tmp_path):
    path = tmp_path / "log"
    with open(path, "w") as f, open(tmp_path / "other", "w") as other:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert is_journal_stream(f, env)
        assert not is_journal_stream(other, env)
        assert not is_journal_stream(f, {})
        assert not is_journal_stream(f, {"JOURNAL_STREAM": "garbage"})


async def _run(*, launcher):
    proto = spawn_twist("--log-format=text", "--log-file=+", "statserver",
                        "--port", "tcp:0:interface=127.0.0.1",
                        env=dict(os.environ), launcher=launcher)
    try:
        line = await proto.stderr.first(lambda line: "statserver listening on" in line)
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+) ", line).group(1))
        client = await connect(port, seconds=PROCESS_TIMEOUT)
        client.sendMessage(b"\x00not gob", isBinary=True)  # a bad frame: a warning
        await proto.stderr.first(lambda line: "Bad frame from" in line)
        proto.process.signalProcess("TERM")
        await bounded(proto.ended, PROCESS_TIMEOUT)
    except BaseException:
        proto.kill()
        raise
    return proto.stderr.seen


@pytest_twisted.ensureDeferred
async def test_under_systemd_warnings_have_priority_4():
    lines = await _run(launcher=AS_SYSTEMD)
    assert [line for line in lines if "Bad frame from" in line][0].startswith("<4>")
    assert [line for line in lines if "statserver listening on" in line][0].startswith("<6>")
    assert all(line[:1] == "<" for line in lines if line), lines


@pytest_twisted.ensureDeferred
async def test_without_systemd_lines_are_plain():
    lines = await _run(launcher=())
    assert not any(line.startswith("<") for line in lines), lines
