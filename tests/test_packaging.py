"""The package as users get it: an editable install for developers, the sdist and the wheel
for everyone else. Slow (fresh virtualenvs, installs from the package index), so marked
``packaging`` and run by ``tox -e release`` rather than by every env."""

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import statserver

ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 600
pytestmark = pytest.mark.packaging


def run(*args, cwd=None, timeout=INSTALL_TIMEOUT):
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def fresh_venv(path):
    """A new virtualenv at ``path`` (of this test's Python); its bin directory."""
    run(sys.executable, "-m", "venv", path)
    return path / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``(sdist, wheel)`` built from this tree with ``python -m build``."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def check_command(bin_dir, cwd):
    """``twist statserver --help`` and ``--version`` of an installed statserver."""
    help_text = run(bin_dir / "twist", "statserver", "--help", cwd=cwd)
    assert "--stats-log" in help_text and "--ping-interval" in help_text
    version = run(bin_dir / "twist", "statserver", "--version", cwd=cwd)
    assert version.startswith(f"statserver {statserver.__version__} ")


def test_editable_install_finds_the_plugin(tmp_path):
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "-q", "-e", ROOT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check_command(bin_dir, elsewhere)
    where = run(bin_dir / "python", "-c", "import statserver; print(statserver.__file__)",
                cwd=elsewhere)
    assert Path(where.strip()) == ROOT / "statserver" / "__init__.py"  # the source tree


def test_the_wheel_installs_a_working_command(dist, tmp_path):
    _, wheel = dist
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/statserver_plugin.py" in names
    # Twisted's own packages must not be shadowed by ours
    assert not any(n in names for n in ("twisted/__init__.py", "twisted/plugins/__init__.py"))
    assert "statserver/wire/stat.proto" in names
    # the compiled accelerator, built wherever a C compiler is (always so in CI)
    assert any(n.startswith("statserver/_speedups.") and n.endswith(".so") for n in names)
    for asset in ("index.html", "dashboard.js", "dashboard.css", "icon.svg"):
        assert f"statserver/dashboard/static/{asset}" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "peers/")) for n in names)
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "-q", wheel)
    check_command(bin_dir, tmp_path)


def test_the_sdist_holds_the_docs_and_tests_and_they_pass(dist, tmp_path):
    sdist, _ = dist
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.glob("statserver-*")
    for name in ("LICENSE", "NEWS.md", "README.md", "tox.ini", "setup.cfg", "docs/index.md",
                 "tests/conftest.py", "tests/wsclient.py", "tests/data", "peers", "setup.py",
                 "statserver/_speedups.c"):
        assert (tree / name).exists(), name
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "-q", f"{sdist}[test]")
    check_command(bin_dir, tmp_path)
    # the suite of the unpacked sdist against the installed package (pytest's script puts
    # only tests/ on sys.path, not the tree, so statserver is the installed one)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([str(bin_dir / "pytest"), "-q", "-p", "no:cacheprovider"],
                            cwd=tree, capture_output=True, text=True, env=env,
                            timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    tail = result.stdout[-3000:]
    assert result.returncode == 0, tail + result.stderr[-2000:]
    assert " passed" in tail and " failed" not in tail
