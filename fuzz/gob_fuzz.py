"""Coverage-guided fuzzing of the gob decoder with atheris (libFuzzer).

Every input must decode or raise GobError, through ``decode_all`` and
``decode_stat_frame``, and the interpreter (a type's first use) and the compiled code must
agree on it. The seed corpus is every stream of ``$GOB_VECTORS`` and every gob frame of
``$STAT_FRAMES`` (defaults ``tests/data/gob-vectors`` and ``tests/data/stat-frames``). libFuzzer options pass
through, e.g.:

    python fuzz/gob_fuzz.py -max_total_time=300
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from statserver.gob import GobError, decode_all, decoder
    from statserver.gobstat import decode_stat_frame

REPO = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("GOB_VECTORS", REPO / "tests" / "data" / "gob-vectors"))
FRAMES = Path(os.environ.get("STAT_FRAMES", REPO / "tests" / "data" / "stat-frames"))


def outcome(data):
    try:
        return repr(decode_all(data))
    except GobError as exc:
        return f"GobError: {exc}"


def test_one_input(data):
    decoder.clear_cache()
    interpreted = outcome(data)
    decoder.INTERPRET_FIRST = False
    try:
        decoder.clear_cache()
        compiled = outcome(data)
    finally:
        decoder.INTERPRET_FIRST = True
    if interpreted != compiled:
        raise AssertionError(f"paths disagree on {data.hex()}:\n{interpreted}\n{compiled}")
    try:
        decode_stat_frame(data)
    except GobError:
        pass


def seed_corpus():
    corpus = Path(tempfile.mkdtemp(prefix="gob-fuzz-corpus-"))
    n = 0
    for path in sorted(VECTORS.glob("*.jsonl")) + sorted(FRAMES.glob("v*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            data = bytes.fromhex(record.get("gob") or record.get("frame", ""))
            (corpus / f"seed-{n}").write_bytes(data)
            n += 1
    return str(corpus)


def main():
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(seed_corpus())
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
