"""The committed reference data (tests/data) is exactly what peers/gendata writes: the
generator is built with Debian's Go (GOPATH mode, offline) into a temporary directory and run,
and every file must come out byte for byte the same. Where Go is absent the test skips, and
under CI=true that skip is a failure (tests/conftest.py)."""

import os
import shutil
import subprocess

import pytest
from shared_data import DATA, ROOT

GOPATH = "/usr/share/gocode"  # Debian's golang-google-protobuf-dev


def run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}: {done.stderr.strip()}"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (Debian's golang-go) to regenerate tests/data with")
    tmp = tmp_path_factory.mktemp("gendata")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOCACHE=str(tmp / "gocache"), GOFLAGS="")
    run([go, "build", "-o", str(tmp / "gendata"), "./peers/gendata"], cwd=ROOT, env=env)
    run([str(tmp / "gendata"), "-out", str(tmp / "data")])
    return tmp / "data"


def data_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jsonl"))


def test_regenerating_writes_the_same_files(regenerated):
    assert data_files(regenerated) == data_files(DATA)


@pytest.mark.parametrize("name", data_files(DATA))
def test_regenerating_writes_the_same_bytes(regenerated, name):
    made = (regenerated / name).read_bytes().splitlines()
    committed = (DATA / name).read_bytes().splitlines()
    for n, (a, b) in enumerate(zip(made, committed, strict=False), 1):
        if a != b:
            at = next(i for i, (x, y) in enumerate(zip(a + b"$", b + b"$", strict=False)) if x != y)
            pytest.fail(f"{name} line {n}, from byte {at}: committed {b[max(at - 40, 0):at + 40]!r}, "
                        f"regenerated {a[max(at - 40, 0):at + 40]!r}")
    assert len(made) == len(committed)
