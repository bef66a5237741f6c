"""max_depth: capped at ``decoder.MAX_DEPTH``, and at any depth up to the cap both
executions (interpreted, compiled; a sender's first and second frame) fail at max_depth and
nowhere else — never on Python's recursion limit — with the stack the docs promise."""

import pytest
from gobpaths import assert_paths_agree, outcome
from gobwire import fields, i, map_type, s, single, slice_type, struct_type, u, value

from statserver.gob import GobError, decode
from statserver.gob.decoder import MAX_DEPTH, STACK_FRAMES, clear_cache


def nested_slice_types(depth):
    """``depth`` slice types, each of the next, the last of ints, and a value using them all
    (CVE-2022-30635's shape)."""
    defs = b"".join(slice_type(100 + n, 101 + n) for n in range(depth - 1)) + slice_type(99 + depth, 2)
    return defs + single(100, u(1) * (depth - 1) + u(1) + i(5))


def self_slice(depth):
    """type S []S, a value ``depth`` deep."""
    body = u(0)
    for _ in range(depth - 1):
        body = u(1) + body
    return slice_type(65, 65) + single(65, body)


def struct_in_interface(depth):
    """type Box struct{ V interface{} }, Boxes in Boxes: two levels per Box."""
    body = fields()
    for _ in range(depth // 2 - 1):
        body = fields((0, s("main.Box") + i(66) + u(len(body)) + body))
    return struct_type(66, "Box", [("V", 8)]) + value(66, body)


def slice_in_interface(depth):
    """type L []interface{}, Ls in Ls: two levels and three frames per L (the most)."""
    inner = u(0)
    for _ in range(depth // 2 - 1):
        inner = u(1) + s("main.L") + i(65) + u(len(inner) + 1) + u(0) + inner
    return slice_type(65, 8) + single(65, inner)


def zero_values(depth):
    """S0{B: 1}, whose absent A is the zero of S1, of S2, ...: it nests ``depth`` deep."""
    defs = b"".join(struct_type(100 + n, f"S{n}", [("A", 101 + n), ("B", 2)]) for n in range(depth - 1))
    return defs + struct_type(99 + depth, "Last", [("B", 2)]) + value(100, fields((1, i(1))))


def map_key(depth):
    """map[K0]int whose key nests structs ``depth - 1`` deep (frozen to be hashed)."""
    defs = map_type(99, 100, 2)
    defs += b"".join(struct_type(100 + n, f"K{n}", [("A", 101 + n)]) for n in range(depth - 2))
    defs += struct_type(98 + depth, "Last", [("B", 2)])
    key = fields((0, i(1)))
    for _ in range(depth - 2):
        key = fields((0, key))
    return defs + single(99, u(1) + key + i(7))


DEEP = [nested_slice_types, self_slice, struct_in_interface, slice_in_interface, zero_values, map_key]


def frames_left():
    """How many more Python frames the stack takes here before RecursionError."""

    def down(n):
        try:
            return down(n + 1)
        except RecursionError:
            return n

    return down(1)


def with_frames_left(n, fn):
    """``fn()``, called where only ``n`` frames are left below Python's recursion limit."""

    def down(k):
        return fn() if k <= 0 else down(k - 1)

    return down(frames_left() - n)


@pytest.mark.parametrize("make", DEEP, ids=lambda f: f.__name__)
@pytest.mark.parametrize("depth", [MAX_DEPTH, 40])
def test_every_path_fails_at_max_depth_and_nowhere_else(make, depth):
    def check():
        assert make(depth) != make(depth + 2)
        ok = assert_paths_agree(make(depth), max_depth=depth)
        deeper = assert_paths_agree(make(depth + 2), max_depth=depth)
        return ok, deeper

    ok, deeper = with_frames_left(STACK_FRAMES, check)
    assert ok[0] == "ok"
    assert deeper[0] == "error" and "max_depth" in deeper[1], deeper


@pytest.mark.parametrize("max_depth", [MAX_DEPTH, 1000])
def test_600_nested_slice_types_same_outcome_on_first_and_second_frame(max_depth):
    # The case: interpreted, a sender's first frame failed on Python's recursion
    # limit and its second, compiled, decoded. Now both fail at max_depth, or the limit is
    # refused as more than the cap.
    stream = nested_slice_types(600)
    clear_cache()
    frames = []
    for _ in range(2):
        try:
            frames.append(outcome(stream, max_depth=max_depth))
        except ValueError as exc:
            frames.append(("refused", str(exc)))
    assert frames[0] == frames[1]
    if max_depth <= MAX_DEPTH:
        assert frames[0][0] == "error" and "nesting exceeds max_depth" in frames[0][1]
    else:
        assert frames[0] == ("refused", f"gob limit max_depth must be at most {MAX_DEPTH} "
                                        f"(Python's recursion limit), not {max_depth}")


def test_max_depth_above_the_cap_is_refused():
    assert decode(self_slice(3), max_depth=MAX_DEPTH) == [[[]]]
    with pytest.raises(ValueError, match=f"at most {MAX_DEPTH}"):
        decode(self_slice(3), max_depth=MAX_DEPTH + 1)


def test_a_caller_too_deep_in_the_stack_gets_a_gob_error():
    # Below STACK_FRAMES of room, Python's own limit may come first: still a GobError.
    with pytest.raises(GobError, match="recursion limit"):
        with_frames_left(60, lambda: decode(self_slice(MAX_DEPTH), max_depth=MAX_DEPTH))
