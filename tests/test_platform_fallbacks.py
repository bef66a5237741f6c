"""What the server does where a platform lacks something: no compiled extension (the
pure-Python decoders are used), no ``resource`` module (Windows: no open-files limit to
raise or follow), a hard limit the kernel refuses (macOS), a garbled ``$WATCHDOG_PID``."""

import sys

import pytest

import statserver
from statserver import systemd
from statserver.aggregation.aggregator import (
    compiled_aggregate_record_many,
    compiled_linear_averages,
)
from statserver.server.admission import compiled_admit_all
from statserver.server.framing import compiled_split_frames
from statserver.server.service import open_files_limit
from statserver.sinks.summary import compiled_add_stats
from statserver.wire.protostat import compiled_decode_protobuf


@pytest.fixture
def no_extension(monkeypatch):
    """``statserver._speedups`` cannot be imported (as where it was never built)."""
    monkeypatch.delattr(statserver, "_speedups", raising=False)
    monkeypatch.setitem(sys.modules, "statserver._speedups", None)


@pytest.fixture
def no_resource_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "resource", None)


@pytest.mark.parametrize(
    "compiled", [compiled_decode_protobuf, compiled_add_stats, compiled_aggregate_record_many,
                 compiled_linear_averages, compiled_split_frames, compiled_admit_all]
)
def test_without_the_extension_there_is_no_compiled_function(no_extension, compiled):
    assert compiled() is None


def test_without_a_resource_module_no_open_files_limit(no_resource_module, logged):
    assert systemd.raise_open_files_limit() is None
    assert open_files_limit() is None
    assert logged.containing("open-files limit") == []


def test_a_hard_limit_the_kernel_refuses_keeps_the_soft_one_and_says_why(monkeypatch, logged):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, resource.RLIM_INFINITY))

    def refuse(which, limits):
        raise ValueError("current limit exceeds maximum limit")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert systemd.raise_open_files_limit() == 256
    [line] = logged.containing("cannot raise the open-files limit")
    assert "from 256" in line and "current limit exceeds maximum limit" in line


def test_a_watchdog_pid_that_is_no_number_turns_the_watchdog_off():
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "init"}) is None
