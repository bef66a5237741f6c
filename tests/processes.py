"""Test helpers: a child process run to its end, bounded in time, on the running reactor;
the repository's Go peers (``peers/``) built once."""

import os
import subprocess
from pathlib import Path

import pytest
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from wsclient import PROCESS_TIMEOUT

REPO = Path(__file__).resolve().parent.parent
PEERS_BUILD = REPO / "peers" / "build.sh"
GO_MISSING = 69  # peers/build.sh's exit code when Go or its two libraries are not installed


async def run_process(executable, args, seconds=PROCESS_TIMEOUT):
    """``(exit code, stdout, stderr)`` of ``executable args`` run with this environment."""
    out, err, code = await getProcessOutputAndValue(
        executable, args, env=os.environ, reactor=reactor
    ).addTimeout(seconds, reactor)
    return code, out.decode(), err.decode()


def go_peers(out_dir, programs=("activator", "refserver")):
    """The directory holding the built Go peers: ``$STATSERVER_PEER_BIN`` when set (it must
    hold ``programs``), else ``out_dir`` after ``peers/build.sh`` has built them there.

    Skips, saying why, where Debian's Go is not installed (the build never installs it
    from a test); fails when the build fails."""
    given = os.environ.get("STATSERVER_PEER_BIN")
    if given:
        missing = [p for p in programs if not (Path(given) / p).is_file()]
        if missing:
            pytest.fail(f"STATSERVER_PEER_BIN={given} holds no {', '.join(missing)}")
        return Path(given)
    build = subprocess.run(
        ["sh", str(PEERS_BUILD), str(out_dir), *programs], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, STATSERVER_PEERS_NO_INSTALL="1"),
    )
    if build.returncode == GO_MISSING:
        pytest.skip(build.stderr.strip())
    if build.returncode != 0:
        pytest.fail(f"peers/build.sh failed ({build.returncode}):\n{build.stdout}{build.stderr}")
    return Path(out_dir)
