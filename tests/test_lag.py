"""The reactor-stall gauge the abuse benchmark reads: a timer's lateness, less the time
the thread waited for a CPU."""

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
