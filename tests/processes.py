"""Test helper: a child process run to its end, bounded in time, on the running reactor."""

import os

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

TIMEOUT = 30.0  # a cold start imports Twisted, autobahn and protobuf on a busy machine


async def run_process(executable, args, seconds=TIMEOUT):
    """``(exit code, stdout, stderr)`` of ``executable args`` run with this environment."""
    out, err, code = await getProcessOutputAndValue(
        executable, args, env=os.environ, reactor=reactor
    ).addTimeout(seconds, reactor)
    return code, out.decode(), err.decode()
