"""``twist statserver``'s running service (``statserver.tap.StatserverService``) when
something goes wrong around it: a stop before the bind, a child or a sink that raises, a
second SIGTERM, and the status it leaves with."""

import signal
import sys

import pytest
import pytest_twisted
from memoryreactor import MemoryReactor
from processes import run_process
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.python.usage import UsageError
from zope.interface import implementer

from statserver.server.service import StatsServer
from statserver.sinks.base import Sink
from statserver.tap import Options, StatserverService


@implementer(IStreamServerEndpoint)
class _NeverBinds:
    """An endpoint whose bind never completes (until cancelled)."""

    def listen(self, factory):
        return Deferred()


class _Reopens(Sink):
    def __init__(self, fails=False):
        self.fails = fails
        self.reopened = 0

    def reopen(self):
        self.reopened += 1
        if self.fails:
            raise OSError(13, "Permission denied")


def _service(reactor, sinks=(), exits=None, endpoint=None, handle_signals=False):
    server = StatsServer(endpoint or _NeverBinds(), reactor=reactor)
    return StatserverService(
        server, list(sinks), port_description="tcp:8080", reactor=reactor, environ={},
        handle_signals=handle_signals, exit=(exits if exits is not None else []).append,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args, words",
    [
        (["--ping-interval", "soon"], ["--ping-interval", "number of seconds", "'soon'"]),
        (["--port", "systemd:domain=INET:name=nope"], ["no socket 'nope' was passed by systemd"]),
        (["--port", "systemd:domain=INET:index=3"], ["no socket at that index", "LISTEN_FDS"]),
    ],
)
def test_more_bad_options_say_why(args, words):
    with pytest.raises(UsageError) as e:
        Options().parseOptions(args)
    for word in words:
        assert word in str(e.value)


def test_stopped_before_the_bind_completes_is_no_failure(logged):
    reactor = MemoryReactor()
    reactor.running = True
    exits = []
    service = _service(reactor, exits=exits)
    service.startService()
    d = service.stopService()
    assert d.called
    assert service.listen_error is None
    assert exits == [] and not reactor.hasStopped
    assert logged.containing("cannot listen") == []


def test_a_child_that_fails_to_stop_is_logged_and_the_others_still_stop(logged):
    reactor = MemoryReactor()
    service = _service(reactor)

    class Broken(Service):
        def stopService(self):
            raise RuntimeError("stuck")

    Broken().setServiceParent(service)  # last: stopped first
    service.startService()
    d = service.stopService()
    assert d.called
    assert not service.server.running and not service.consumer.running
    [text] = logged.containing("while stopping")
    assert "Broken" in text


def test_reload_reopens_every_sink_even_after_one_fails(logged):
    failing, fine = _Reopens(fails=True), _Reopens()
    service = _service(MemoryReactor(), sinks=[failing, fine])
    service.reload()
    assert (failing.reopened, fine.reopened) == (1, 1)
    assert len(logged.containing("while reopening _Reopens")) == 1


class _StoppingReactor(MemoryReactor):
    """Runs callFromThread at once; ``stop`` raises once the reactor is stopping, as
    Twisted's does."""

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)

    def stop(self):
        if self.hasStopped:
            raise ReactorNotRunning()
        super().stop()


def test_a_second_sigterm_while_stopping_is_harmless(logged):
    reactor = _StoppingReactor()
    reactor.running = True  # so the handlers go in at start
    service = _service(reactor, handle_signals=True)
    before = signal.getsignal(signal.SIGTERM)
    service.startService()
    try:
        handler = signal.getsignal(signal.SIGTERM)
        assert handler != before
        handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)  # raises ReactorNotRunning inside, never out
        assert reactor.hasStopped
        assert len(logged.containing("Received SIGTERM")) == 2
    finally:
        service.stopService()
    assert signal.getsignal(signal.SIGTERM) == before


def test_no_signal_handlers_once_stopped():
    reactor = MemoryReactor()
    service = _service(reactor, handle_signals=True)
    service.startService()
    service.stopService()
    before = signal.getsignal(signal.SIGHUP)
    reactor.run()  # the callWhenRunning queued at start comes too late
    assert signal.getsignal(signal.SIGHUP) == before


@pytest_twisted.ensureDeferred
async def test_exit_now_leaves_with_the_status_and_the_output_flushed(monkeypatch):
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # buffered, as under systemd
    code, out, err = await run_process(sys.executable, [
        "-c",
        "import sys; from statserver.tap import _exit_now;"
        " print('bye', end=''); sys.stderr.write('err'); _exit_now(3)",
    ])  # fmt: skip
    assert (code, out, err) == (3, "bye", "err")


@pytest_twisted.ensureDeferred
async def test_exit_now_keeps_the_status_when_stdout_is_gone():
    code, out, err = await run_process(sys.executable, [
        "-c", "import sys; from statserver.tap import _exit_now; sys.stdout.close(); _exit_now(4)",
    ])  # fmt: skip
    assert (code, err) == (4, "")


@pytest.mark.parametrize(
    "implementation, pure, why",
    [
        ("compiled", None, "statserver._speedups: frames, protobuf, gob, admission, aggregation, summary"),
        ("pure", "1", "STATSERVER_PURE=1"),
        ("pure", None, "statserver._speedups is not built"),
    ],
)
def test_the_start_says_which_implementation_runs_and_why(
    monkeypatch, logged, implementation, pure, why
):
    monkeypatch.setattr("statserver.wire.IMPLEMENTATION", implementation)
    if pure is None:
        monkeypatch.delenv("STATSERVER_PURE", raising=False)
    else:
        monkeypatch.setenv("STATSERVER_PURE", pure)
    service = _service(MemoryReactor())
    service.startService()
    service.stopService()
    assert logged.containing("statserver implementation:") == [
        f"statserver implementation: {implementation} ({why})"
    ]


def test_reload_leaves_bucket_owners_given_by_name_alone():
    class Owners:
        path = None
        reloads = 0

        def reload(self):
            self.reloads += 1

    named, from_file = Owners(), Owners()
    from_file.path = "/etc/owners"
    for owners in (named, from_file):
        service = _service(MemoryReactor())
        service.bucket_owners = owners
        service.reload()
    assert (named.reloads, from_file.reloads) == (0, 1)
