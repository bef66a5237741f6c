"""``statserver-load``'s arguments: each nonsense refused with status 2 and one line
saying which argument and why (argparse's usage line above it); a ``wss://`` URL without
TLS support, in statserver-load and ``StatsClient``."""

import sys

import pytest
from memoryreactor import MemoryReactor

from statserver.client import StatsClient
from statserver.load import parse_args
from statserver.tls import TLSUnavailable


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--batch", "0"], "--batch must be at least 1"),
        (["--processes", "0"], "--processes must be at least 1"),
        (["--stats", "0"], "--stats must be at least 1"),
        (["--rate", "-1"], "--rate must not be negative"),
        (["--duration", "0"], "--duration must be positive"),
        (["--connections", "2", "--processes", "3"], "--processes must not exceed --connections"),
        (["--url", "http://127.0.0.1:8080/"], "--url: "),
        (["--format", "gob", "--era", "v99"], "cannot encode gob frames (era v99)"),
    ],
)
def test_nonsense_exits_2_saying_why(capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert words in err
    assert err.splitlines()[-1].startswith("statserver-load: error: ")


def test_stats_default_only_without_a_duration():
    assert parse_args([]).stats == 10000
    assert parse_args(["--duration", "5"]).stats is None


@pytest.fixture
def no_tls(monkeypatch):
    """Twisted's TLS support missing (pyOpenSSL not installed), whatever this env has."""
    monkeypatch.setitem(sys.modules, "twisted.internet.ssl", None)


def test_wss_without_tls_support_exits_2_saying_what_to_install(capsys, no_tls):
    with pytest.raises(SystemExit) as e:
        parse_args(["--url", "wss://stats.example:8443/"])
    assert e.value.code == 2
    [line] = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert line.startswith("statserver-load: error: --url: wss:// needs TLS support: "
                           "pip install 'statserver[tls]'")


def test_a_client_for_wss_without_tls_support_is_refused_at_once(no_tls):
    with pytest.raises(TLSUnavailable, match=r"pip install 'statserver\[tls\]'"):
        StatsClient("wss://stats.example:8443/", reactor=MemoryReactor())
