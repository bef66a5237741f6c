"""Running under systemd: the notify protocol and the open-files limit.

The notify protocol is one datagram per state change sent to the ``AF_UNIX`` socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for Linux's abstract namespace). It is a few lines
over a datagram socket, so it is written here rather than taken from a binding to libsystemd.
"""

import os
import socket

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

_log = Logger()


def notify_address(environ):
    """The address to send notifications to, from ``$NOTIFY_SOCKET`` in ``environ``, or None
    when it is unset or not an ``AF_UNIX`` address (``@name`` is the abstract ``\\0name``)."""
    name = environ.get("NOTIFY_SOCKET", "")
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None


def watchdog_interval(environ, pid=None):
    """Seconds between ``WATCHDOG=1`` messages (half of ``$WATCHDOG_USEC``), or None when the
    watchdog is off or meant for another process (``$WATCHDOG_PID`` is not ``pid``)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class SystemdNotifier(Service):
    """Tells systemd how the service is doing.

    ``ready()`` sends ``READY=1`` (the owner calls it once the server listens); stopping the
    service sends ``STOPPING=1``; while running, ``WATCHDOG=1`` goes every half of
    ``$WATCHDOG_USEC``. Without ``$NOTIFY_SOCKET`` every call does nothing.
    """

    def __init__(self, *, reactor=None, environ=None):
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        environ = os.environ if environ is None else environ
        self.address = notify_address(environ)
        self.watchdog_interval = watchdog_interval(environ) if self.address else None
        self._watchdog = None
        self._failed = False

    def notify(self, *assignments):
        """Send ``KEY=VALUE`` lines as one datagram; True when sent. A failure is logged once
        and never raised: systemd being away must not stop the server."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError as e:
            if not self._failed:
                self._failed = True
                _log.warn(
                    "cannot notify systemd at {address!r}: {error}",
                    address=self.address,
                    error=e,
                )
            return False
        return True

    def ready(self, status=None):
        """``READY=1`` (with a ``STATUS=`` line when given)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def startService(self):
        super().startService()
        if self.watchdog_interval:
            self._watchdog = LoopingCall(self.notify, "WATCHDOG=1")
            self._watchdog.clock = self._reactor
            self._watchdog.start(self.watchdog_interval, now=True)

    def stopService(self):
        super().stopService()
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self._watchdog = None
        self.notify("STOPPING=1")


def raise_open_files_limit():
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit and log the result; returns the
    soft limit now in force (None where the platform has no such limit)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:
            # macOS reports an infinite hard limit yet refuses it above OPEN_MAX.
            _log.warn(
                "cannot raise the open-files limit from {soft} to {hard}: {error}",
                soft=soft,
                hard=hard,
                error=e,
            )
            return soft
        soft = hard
    _log.info("open-files limit: {soft}", soft="unlimited" if soft == resource.RLIM_INFINITY else soft)
    return soft
