"""Helpers shared by the benchmark scripts: the machine they ran on, Knative's frames of
``$STAT_FRAMES``, and a timing loop.

The scripts run as ``python benchmarks/x.py``, which puts this directory on ``sys.path``.
"""

import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def machine():
    """CPU model, core count, architecture and Python: the heading of every figure."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} CPUs, {platform.machine()}, "
            f"Python {platform.python_version()}")


def stat_frames_dir():
    """``$STAT_FRAMES`` (default the repository's ``tests/data/stat-frames``)."""
    return Path(os.environ.get("STAT_FRAMES", REPO / "tests" / "data" / "stat-frames"))


def stat_frames(name):
    """The frames (dicts, one per line) of a ``$STAT_FRAMES`` file; None when it is absent."""
    path = stat_frames_dir() / name
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def us_per_item(fn, items, seconds, repeat, *, unpack=False):
    """µs per ``fn(item)`` (``fn(*item)`` with ``unpack``) over ``items``, in each of
    ``repeat`` runs of about ``seconds``; take the median of what it returns."""

    def run(loops):
        t = time.perf_counter()
        if unpack:
            for _ in range(loops):
                for item in items:
                    fn(*item)
        else:
            for _ in range(loops):
                for item in items:
                    fn(item)
        return time.perf_counter() - t

    loops = 1
    while True:  # find a loop count that takes about `seconds`
        took = run(loops)
        if took > seconds / 4:
            loops = max(1, int(loops * seconds / took))
            break
        loops *= 2
    return [run(loops) / (loops * len(items)) * 1e6 for _ in range(repeat)]
