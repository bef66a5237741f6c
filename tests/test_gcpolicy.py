"""``twist statserver``'s ways of keeping a reactor turn short with many connections:
freezing what survives each full garbage collection (statserver/gcpolicy.py) and capping
the I/O events of a turn (statserver/turns.py)."""

import gc
import select
import socket
import weakref

import pytest
import pytest_twisted
from memoryreactor import MemoryReactor
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.python.usage import UsageError
from wsclient import bounded

from statserver.gcpolicy import FULL_EVERY, FreezeSurvivors
from statserver.tap import Options, makeService
from statserver.turns import EVENTS_PER_TURN, _CappedPoller, limit_events_per_turn


class Node:
    """A container object the collector tracks."""

    def __init__(self):
        self.other = None


@pytest.fixture
def policy():
    registry = CollectorRegistry()
    policy = FreezeSurvivors(registry=registry)
    policy.registry = registry
    thresholds = gc.get_threshold()
    yield policy
    policy.stop()
    assert gc.get_threshold() == thresholds


def test_what_survives_a_full_collection_is_frozen_and_garbage_is_not(policy):
    policy.start()
    kept = Node()
    cycle = Node()
    cycle.other = Node()
    cycle.other.other = cycle  # garbage only the collector can free
    gone = weakref.ref(cycle)
    del cycle
    frozen = gc.get_freeze_count()
    gc.collect()
    assert gone() is None  # the cycle was collected, not frozen
    assert policy.freezes == 1
    assert gc.get_freeze_count() > frozen
    assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation
    assert policy.registry.get_sample_value("statserver_gc_frozen_objects") == \
        gc.get_freeze_count()


def test_a_full_collection_comes_after_every_second_middle_one(policy):
    before = gc.get_threshold()
    policy.start()
    assert gc.get_threshold() == (before[0], before[1], FULL_EVERY)
    policy.stop()
    assert gc.get_threshold() == before
    gc.collect()
    assert policy.freezes == 0  # stopped: the collections no longer freeze


def test_starting_or_stopping_twice_is_harmless(policy):
    callbacks = len(gc.callbacks)
    policy.start()
    policy.start()
    assert len(gc.callbacks) == callbacks + 1
    policy.stop()
    policy.stop()
    assert len(gc.callbacks) == callbacks


def test_a_policy_without_a_registry_freezes_all_the_same():
    policy = FreezeSurvivors()  # as benchmarks/big_frames.py runs it
    policy.start()
    try:
        gc.collect()
        assert policy.freezes == 1
    finally:
        policy.stop()


def test_young_collections_do_not_freeze(policy):
    policy.start()
    gc.collect(0)
    gc.collect(1)
    assert policy.freezes == 0


@pytest_twisted.ensureDeferred
async def test_the_command_freezes_survivors_unless_told_start():
    for args, freezes in (([], True), (["--gc-freeze", "start"], False)):
        options = Options()
        options.parseOptions(["--port", "tcp:0:interface=127.0.0.1", *args])
        service = makeService(options, reactor=reactor)
        service.startService()
        try:
            await bounded(service.server.listening)
            gc.collect()
            assert (service.gc_policy.freezes > 0) is freezes
            assert service.server.registry.get_sample_value(
                "statserver_gc_frozen_objects") == gc.get_freeze_count()
        finally:
            await bounded(service.stopService())


def test_gc_freeze_takes_only_its_two_values():
    with pytest.raises(UsageError) as e:
        Options().parseOptions(["--gc-freeze", "always"])
    assert str(e.value) == "--gc-freeze must be survivors or start, not 'always'"


# ---- at most so many I/O events a turn ----


def test_a_capped_poller_reports_a_burst_over_several_polls_and_misses_none():
    pairs = [socket.socketpair() for _ in range(10)]
    poller = select.epoll()
    try:
        for ours, theirs in pairs:
            poller.register(ours.fileno(), select.EPOLLIN)
            theirs.send(b"x")  # every one readable at once
        capped = _CappedPoller(poller, 4)
        seen = []
        for expected in (4, 4, 2):
            events = capped.poll(0, 10)
            assert len(events) == expected
            for fd, _ in events:
                [ours] = [o for o, _ in pairs if o.fileno() == fd]
                ours.recv(1)
                seen.append(fd)
        assert sorted(seen) == sorted(o.fileno() for o, _ in pairs)
        assert capped.poll(0, 10) == []
    finally:
        poller.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_an_epoll_reactors_turns_are_capped_until_undone():
    before = reactor._poller
    undo = limit_events_per_turn(reactor, 7)
    try:
        assert reactor._poller.limit == 7
        assert reactor._poller.fileno() == before.fileno()
    finally:
        undo()
    assert reactor._poller is before


@pytest_twisted.ensureDeferred
async def test_the_command_caps_the_reactors_turns_while_it_runs():
    before = reactor._poller
    options = Options()
    options.parseOptions(["--port", "tcp:0:interface=127.0.0.1"])
    service = makeService(options, reactor=reactor)
    service.startService()
    try:
        await bounded(service.server.listening)
        assert reactor._poller.limit == EVENTS_PER_TURN
    finally:
        await bounded(service.stopService())
    assert reactor._poller is before


def test_capping_twice_sets_the_new_limit_and_one_undo_restores():
    before = reactor._poller
    undo = limit_events_per_turn(reactor, 7)
    try:
        again = limit_events_per_turn(reactor, 9)
        assert reactor._poller.limit == 9
        again()  # the first cap's undo is the one that restores
        assert reactor._poller.limit == 9
    finally:
        undo()
    assert reactor._poller is before


def test_undo_leaves_a_poller_someone_else_installed_since():
    before = reactor._poller
    undo = limit_events_per_turn(reactor, 7)
    theirs = _CappedPoller(before, 3)
    reactor._poller = theirs
    try:
        undo()
        assert reactor._poller is theirs
    finally:
        reactor._poller = before


def test_a_reactor_without_epoll_is_left_alone():
    assert limit_events_per_turn(MemoryReactor()) is None
