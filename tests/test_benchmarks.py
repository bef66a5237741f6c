"""The benchmarks still run (quick settings, as smoke tests): their figures are for
benchmarks/README.md and the docs, never asserted here."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_benchmark(script, *args, timeout=120):
    """``python benchmarks/SCRIPT ARGS``; its stdout, once it exited 0."""
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_ingest_quick_measures_every_format():
    out = run_benchmark("ingest.py", "--quick")
    assert out.startswith("machine: ")
    for fmt in ("gob", "json", "protobuf"):
        line = re.search(rf"^  {fmt} \((\d+) stats.*?([\d,]+) stats/s\s+([\d.]+) CPU s/100k",
                         out, re.M)
        assert line, f"no {fmt} figures in:\n{out}"
        assert int(line.group(1)) > 0
        assert int(line.group(2).replace(",", "")) > 0


def test_decode_measures_every_format():
    out = run_benchmark("decode.py", "--seconds", "0.05", "--repeat", "1")
    for label in ("gob v10", "json", "protobuf, 100 a frame"):
        assert re.search(rf"^  {re.escape(label)}.*µs/frame", out, re.M), out


def test_framing_measures_every_path():
    out = run_benchmark("framing.py", "--frames", "300", "--repeat", "1")
    assert out.startswith("machine: ")
    from statserver.server.framing import compiled_split_frames

    ways = ["autobahn's parser", "fast path, pure"]
    if compiled_split_frames() is not None:
        ways.append("fast path, compiled")
    for way in ways:
        assert len(re.findall(rf"^  {re.escape(way)} +[\d.]+ ", out, re.M)) == 4, out


def test_aggregate_measures_both_aggregations():
    out = run_benchmark("aggregate.py", "--quick")
    assert out.startswith("machine: ")
    for aggregation in ("linear", "weighted-exponential"):
        assert len(re.findall(rf"^  {aggregation} .* µs  \(", out, re.M)) == 3


def test_gob_encode_measures_four_cases():
    out = run_benchmark("gob_encode.py", "--seconds", "0.01", "--repeat", "1")
    assert out.startswith("machine: ")
    assert out.count("µs per message") == 4, out


def test_abuse_quick_runs_every_scenario():
    out = run_benchmark("abuse.py", "--quick", timeout=300)
    assert out.startswith("machine: ")
    from importlib.util import module_from_spec, spec_from_file_location

    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = spec_from_file_location("abuse", BENCHMARKS / "abuse.py")
        abuse = module_from_spec(spec)
        spec.loader.exec_module(abuse)
    finally:
        sys.path.remove(str(BENCHMARKS))
    for name in abuse.SCENARIOS:
        row = re.search(rf"^\| {re.escape(name)} \| (\d+) \| (\d+) \| \d+→\d+ \| "
                        rf"(\d+)/(\d+)/(\d+|-) \| (\d+) \|", out, re.M)
        assert row, f"no {name} row in:\n{out}"
