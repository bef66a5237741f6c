"""Coverage-guided fuzzing of the gob decoder with atheris (libFuzzer).

Every input must decode or raise GobError, through ``decode_all`` (generically and typed
into the server's StatMessage target) and ``decode_stat_frame``, with the same outcome on
every path of the decoder (interpreted, compiled, a sender's first, second and warm frame:
``tests/gobpaths.py``). The seed corpus is every stream of ``$GOB_VECTORS`` and every gob
frame of ``$STAT_FRAMES`` (defaults ``tests/data/gob-vectors`` and ``tests/data/stat-frames``,
found by ``tests/shared_data.py``). libFuzzer options pass
through, e.g.:

    python fuzz/gob_fuzz.py -max_total_time=300
"""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from statserver.gob import GobError
    from statserver.wire.gobstat import _StatMessage, decode_stat_frame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from gobpaths import outcomes  # noqa: E402
from shared_data import GOB_ERAS, gob_vector_files, read_frames, read_jsonl  # noqa: E402


def test_one_input(data):
    for target in (None, _StatMessage):
        got = outcomes(data, target)
        if len(set(got.values())) != 1:
            lines = "\n".join(f"  {path}: {result}" for path, result in got.items())
            raise AssertionError(f"paths disagree on {data.hex()} (target {target}):\n{lines}")
    try:
        decode_stat_frame(data)
    except GobError:
        pass


def _seeds():
    for path in gob_vector_files():
        for record in read_jsonl(path):
            yield bytes.fromhex(record["gob"])
    for era in GOB_ERAS:
        for frame in read_frames(f"{era}.jsonl"):
            yield frame["payload"]


def seed_corpus():
    corpus = Path(tempfile.mkdtemp(prefix="gob-fuzz-corpus-"))
    for n, data in enumerate(_seeds()):
        (corpus / f"seed-{n}").write_bytes(data)
    return str(corpus)


def main():
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(seed_corpus())
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
