"""The reactor-stall gauge the abuse benchmark reads: a timer's lateness, less the time
the thread waited for a CPU."""

import os
import subprocess
import sys
import time

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from statserver.server.lag import ReactorLag


def test_a_late_timer_is_a_stall_of_its_lateness():
    clock = Clock()
    registry = CollectorRegistry()
    lag = ReactorLag(clock, registry, interval=0.025)
    lag.start()
    clock.advance(0.025)
    assert lag.max_stall == 0.0
    clock.advance(0.325)  # a callback held the reactor 0.3 s past the timer's time
    # (less what this thread waited for a CPU meanwhile: at most a few ms here)
    assert 0.25 < lag.max_stall <= 0.3 + 1e-9
    assert registry.get_sample_value("statserver_reactor_stall_max_seconds") == lag.max_stall
    assert registry.get_sample_value("statserver_reactor_lag_seconds_count") == 2
    lag.stop()


def test_time_spent_waiting_for_a_cpu_is_not_a_stall():
    # The test's thread shares one CPU with a busy process for 0.4 s of a timer's
    # lateness: about half of it is spent waiting on the run queue, which the stall
    # leaves out (the lag keeps it).
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    hog = subprocess.Popen([sys.executable, "-c", "print(flush=True)\nwhile True: pass"],
                           stdout=subprocess.PIPE)  # inherits the one CPU
    clock = Clock()
    lag = ReactorLag(clock, CollectorRegistry(), interval=0.025)
    try:
        hog.stdout.readline()  # it runs
        lag.start()
        clock.advance(0.025)
        started = time.monotonic()
        while time.monotonic() - started < 0.4:  # held by a callback, sharing the CPU
            pass
        clock.advance(0.025 + (time.monotonic() - started))
        assert lag.max_stall < 0.4 - 0.1
    finally:
        lag.stop()
        hog.kill()
        hog.wait(10)
        os.sched_setaffinity(0, before)
