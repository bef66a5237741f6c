"""One version, shown everywhere a user looks: ``statserver.__version__``, ``twist
statserver --version``, the ``Server:`` header, ``statserver_build_info`` on /metrics (with
the standard process and platform series beside it)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_twisted
from twistproc import twist
from wsclient import PROCESS_TIMEOUT, bounded, connect, http_get, port_of, start_server

import statserver
from statserver import wire

ROOT = Path(__file__).resolve().parent.parent


def test_one_version_in_the_package_and_the_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+", statserver.__version__)
    setup_cfg = (ROOT / "setup.cfg").read_text()
    assert "version = attr: statserver.__version__" in setup_cfg
    news = (ROOT / "NEWS.md").read_text()
    assert f"## {statserver.__version__}" in news


def test_twist_statserver_version():
    result = subprocess.run(twist("statserver", "--version"), capture_output=True, text=True,
                            timeout=PROCESS_TIMEOUT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"statserver {statserver.__version__} (Twisted ")


@pytest_twisted.ensureDeferred
async def test_server_header_and_build_info():
    server = await start_server()
    try:
        port = port_of(server)
        status, headers, _ = await http_get(port, b"/healthz")
        assert status == 200
        assert headers.getRawHeaders(b"server") == [f"statserver/{statserver.__version__}".encode()]
        status, headers, body = await http_get(port, b"/metrics")
        assert headers.getRawHeaders(b"server") == [f"statserver/{statserver.__version__}".encode()]
        text = body.decode()
        assert (f'statserver_build_info{{implementation="{wire.IMPLEMENTATION}",'
                f'version="{statserver.__version__}"}} 1.0') in text
        for name in ("process_open_fds", "process_max_fds", "process_resident_memory_bytes",
                     "process_cpu_seconds_total", "python_info"):
            assert re.search(rf"^{name}(\{{.*\}})? ", text, re.M), name
        client = await connect(port)
        assert client.http_headers["server"] == f"statserver/{statserver.__version__}"
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())


@pytest_twisted.ensureDeferred
async def test_metrics_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool (apt-get install prometheus)")
    server = await start_server()
    try:
        status, _, body = await http_get(port_of(server), b"/metrics")
    finally:
        await bounded(server.stopService())
    assert status == 200
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                            timeout=PROCESS_TIMEOUT)
    # promtool lints names too; the exit status says whether the exposition is valid
    assert result.returncode == 0, result.stdout + result.stderr
