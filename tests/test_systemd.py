"""sd_notify over a real AF_UNIX datagram socket, the watchdog, the open-files limit."""

import os
import socket
import uuid

import pytest
from twisted.internet.task import Clock

from statserver.systemd import (
    SystemdNotifier,
    notify_address,
    raise_open_files_limit,
    watchdog_interval,
)


class NotifySocket:
    """A socket standing in for systemd's: bound, read with a timeout."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def read(self):
        return self.sock.recv(4096).decode()

    def nothing_waiting(self):
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(5)
        return False

    def close(self):
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = NotifySocket(path)
    yield path, sock
    sock.close()


def test_notify_address():
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@sd-notify"}) == "\0sd-notify"
    assert notify_address({"NOTIFY_SOCKET": ""}) is None
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert notify_address({}) is None


def test_watchdog_interval():
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "42"}, pid=42) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "41"}, pid=42) is None
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": pid}) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_ready_and_stopping(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier(reactor=Clock(), environ={"NOTIFY_SOCKET": path})
    notifier.startService()
    assert sock.nothing_waiting()  # READY=1 waits for the owner: only once listening
    assert notifier.ready(status="listening on 127.0.0.1:8080")
    assert sock.read() == "READY=1\nSTATUS=listening on 127.0.0.1:8080"
    notifier.stopService()
    assert sock.read() == "STOPPING=1"


def test_abstract_socket():
    name = f"statserver-test-{uuid.uuid4().hex}"
    sock = NotifySocket("\0" + name)
    try:
        notifier = SystemdNotifier(reactor=Clock(), environ={"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.read() == "READY=1"
    finally:
        sock.close()


def test_watchdog_every_half_period(notify_socket):
    path, sock = notify_socket
    clock = Clock()
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = SystemdNotifier(reactor=clock, environ=environ)
    notifier.startService()
    assert sock.read() == "WATCHDOG=1"
    clock.advance(1.9)
    assert sock.nothing_waiting()
    clock.advance(0.1)
    assert sock.read() == "WATCHDOG=1"
    clock.advance(2.0)
    assert sock.read() == "WATCHDOG=1"
    notifier.stopService()
    assert sock.read() == "STOPPING=1"
    clock.advance(10)
    assert sock.nothing_waiting()


def test_watchdog_for_another_process_is_not_ours(notify_socket):
    path, sock = notify_socket
    clock = Clock()
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    notifier = SystemdNotifier(reactor=clock, environ=environ)
    notifier.startService()
    clock.advance(10)
    assert sock.nothing_waiting()
    notifier.stopService()


def test_without_systemd_nothing_is_sent():
    notifier = SystemdNotifier(reactor=Clock(), environ={"WATCHDOG_USEC": "1000000"})
    notifier.startService()
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None
    notifier.stopService()


def test_a_missing_socket_is_not_an_error(tmp_path):
    notifier = SystemdNotifier(reactor=Clock(), environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.ready() is False
    assert notifier.notify("STATUS=still fine") is False


def test_open_files_limit_raised_to_the_hard_one():
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = min(soft, hard, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lower, hard))
    try:
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
