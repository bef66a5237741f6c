"""The units of docs/systemd.md, as an operator copies them: ``systemd-analyze verify``
accepts them, and their ``ExecStartPre=`` leaves a sandboxed start nothing to write."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wsclient import PROCESS_TIMEOUT

DOC = Path(__file__).resolve().parent.parent / "docs" / "systemd.md"
BIN = Path(sys.executable).parent


def documented_units():
    """``{file name: text}`` of the ini blocks of docs/systemd.md, each named by the
    ``/etc/systemd/system/...`` path the text before it gives."""
    text = DOC.read_text(encoding="utf-8")
    units = {}
    for m in re.finditer(r"`/etc/systemd/system/([\w./-]+)`(?:(?!/etc/systemd).)*?```ini\n(.*?)```", text, re.S):
        units[m.group(1)] = m.group(2)
    return units


def test_the_page_has_the_three_units():
    assert set(documented_units()) == {
        "statserver.service", "statserver.socket", "statserver.service.d/socket.conf"}
    service = documented_units()["statserver.service"]
    assert "Wants=network.target" not in service
    assert "ExecStartPre=+/opt/statserver/bin/twist --help" in service


def test_systemd_analyze_verify_accepts_them(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze (apt-get install systemd)")
    paths = []
    for name, text in documented_units().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # the docs install into /opt/statserver; this test's twist is the one beside us
        path.write_text(text.replace("/opt/statserver/bin/", f"{BIN}/"))
        paths.append(path)
    units = [str(p) for p in paths if p.suffix in (".service", ".socket")]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True,
                            timeout=PROCESS_TIMEOUT, env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp_path}:"))
    assert result.returncode == 0, result.stdout + result.stderr
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if "statserver" in line]
    assert ours == [], ours


def _plugin_caches():
    import twisted.plugins

    return {p: p.stat().st_mtime_ns for d in twisted.plugins.__path__
            if (p := Path(d) / "dropin.cache").exists()}


def test_exec_start_pre_leaves_nothing_for_the_start_to_write(tmp_path):
    twist = BIN / "twist"
    for cache in _plugin_caches():
        cache.unlink()  # as after an install: no cache, or a stale one
    subprocess.run([str(twist), "--help"], check=True, capture_output=True, timeout=PROCESS_TIMEOUT)
    before = _plugin_caches()
    assert before, "twist --help wrote no plugin cache"
    result = subprocess.run([str(twist), "statserver", "--help"], capture_output=True,
                            text=True, timeout=PROCESS_TIMEOUT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _plugin_caches() == before  # nothing rewritten: a read-only install is fine
    assert "plugin cache" not in result.stdout + result.stderr
