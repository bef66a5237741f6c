"""The benchmarks still run: ``benchmarks/ingest.py --quick`` as a smoke test (its
figures are for benchmarks/README.md, never asserted here)."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_ingest_quick_measures_every_format():
    run = subprocess.run([sys.executable, str(BENCHMARKS / "ingest.py"), "--quick"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("machine: ")
    for fmt in ("gob", "json", "protobuf"):
        line = re.search(rf"^  {fmt} \((\d+) stats.*?([\d,]+) stats/s\s+([\d.]+) CPU s/100k",
                         run.stdout, re.M)
        assert line, f"no {fmt} figures in:\n{run.stdout}"
        assert int(line.group(1)) > 0
        assert int(line.group(2).replace(",", "")) > 0


def test_decode_measures_every_format():
    run = subprocess.run([sys.executable, str(BENCHMARKS / "decode.py"), "--seconds", "0.05",
                          "--repeat", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for label in ("gob v10", "json", "protobuf, 100 a frame"):
        assert re.search(rf"^  {re.escape(label)}.*µs/frame", run.stdout, re.M), run.stdout
