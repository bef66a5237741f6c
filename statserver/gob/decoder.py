"""Decoding gob streams: generic (no target) and typed (into a declared target).

A value's type id and target become a plan (``plan.py``), built once per context. A
plan's first use is interpreted (``interpreter.py``); from its second use it runs code
generated from it (``compiler.py``). Streams that start with the same type-definition
messages (every frame of one Knative sender) share one context from a bounded LRU cache,
so a sender's frames after its first two cost only their value message. Neither the cache
nor the compiled code changes what a stream decodes to, or that it fails.
"""

from collections import OrderedDict
from typing import NamedTuple

from statserver.gob import interpreter, plan
from statserver.gob.compiler import compile_top
from statserver.gob.errors import GobError
from statserver.gob.runtime import (
    _Context,
    _next_message,
    _recv_type,
    _State,
    _type_sequence,
)
from statserver.gob.targets import spec_for
from statserver.gob.wiretypes import _read_type_id


class Limits(NamedTuple):
    """Decoding limits (keyword options of ``decode``/``decode_all``)."""

    max_size: int = 64 << 20  # bytes in the whole stream
    max_message: int = 16 << 20  # bytes in one message
    max_depth: int = 100  # nesting of values, skipped values and zero values; <= MAX_DEPTH
    max_types: int = 4096  # type definitions in one stream
    max_fields: int = 4096  # fields of one struct type


DEFAULT_LIMITS = Limits()
# The largest max_depth accepted. Either execution takes at most 1.5 Python frames per
# level of nesting (an interface holding a slice costs the slice's frame, the interface's
# and its value's top-level decoder's), plus a few: a decode takes at most STACK_FRAMES,
# under half of the 1000 Python allows by default, and the caller keeps the rest. So
# nesting fails at max_depth, never on Python's recursion limit.
MAX_DEPTH = 300
STACK_FRAMES = MAX_DEPTH * 3 // 2 + 20
CACHE_SIZE = 256
# Zero values and wide structs built per stream: a budget of elements linear in its size.
BUDGET_BASE, BUDGET_PER_BYTE = 1 << 18, 16
# Which execution runs a plan: "auto" (interpreted on its first use in a context, compiled
# from its second), or, for tests comparing the two, "interpreted" (always) or "compiled"
# (from the first use). Plans too big to compile are interpreted whatever this says.
EXECUTION = "auto"


def _limits(opts):
    if not opts:
        return DEFAULT_LIMITS
    unknown = set(opts) - set(Limits._fields)
    if unknown:
        raise TypeError(f"unknown gob decoding option(s): {', '.join(sorted(unknown))}")
    for k, v in opts.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"gob limit {k} must be a positive int, not {v!r}")
    depth = opts.get("max_depth", 0)
    if depth > MAX_DEPTH:
        raise ValueError(f"gob limit max_depth must be at most {MAX_DEPTH} (Python's recursion limit), not {depth}")
    return DEFAULT_LIMITS._replace(**opts)


def _top(ctx, tid, spec, pos):
    """The decoder of a top-level or interface value of type ``tid`` into ``spec``: its
    plan interpreted on first use, compiled from the second."""
    key = (tid, spec)
    f = ctx.tops.get(key)
    if f is None:
        p = ctx.plans.get(key) or plan.build(ctx, tid, spec, pos)
        if (
            EXECUTION != "interpreted"
            and (key in ctx.interpreted or EXECUTION == "compiled")
            and plan.size(p) <= COMPILE_MAX_SIZE
        ):
            f = ctx.tops[key] = compile_top(p)
        else:
            f = interpreter.top(p)
            ctx.interpreted.add(key)
    return f


# --- entry points --------------------------------------------------------------------

_cache = OrderedDict()
_last = (b"", None, None)  # the most recently used (prefix, limits, context), set atomically
MAX_CACHED_PREFIX = 64 << 10  # longer type-definition runs are decoded uncached
COMPILE_MAX_SIZE = 1024  # plan nodes + struct fields a value may reach and still be compiled


def clear_cache():
    """Forget every compiled context (the next stream of each sender decodes cold)."""
    _cache.clear()
    global _last
    _last = (b"", None, None)


def _definitions_prefix(data):
    """Length of the leading run of whole type-definition messages (a quick scan: the
    messages are parsed, and checked, when the run is not in the cache)."""
    pos = 0
    n = len(data)
    while pos < n:
        b = data[pos]
        if b < 128:
            length, p = b, pos + 1
        else:
            p = pos + 257 - b
            if p - pos > 9 or p > n:
                break
            length = int.from_bytes(data[pos + 1 : p], "big")
        if length == 0 or length > n - p:
            break
        c = data[p]  # the type id: negative when its uint's low bit is set
        if c >= 128:
            k = 256 - c
            if k > 8 or k >= length:
                break
            c = data[p + k]
        if not c & 1:
            break
        pos = p + length
    return pos


def _context(s, lim, use_cache):
    """The context for a stream, from the cache when its leading type definitions were
    seen before; return it and where decoding continues."""
    data = s.data
    if not use_cache:
        return _Context(), 0
    global _last
    prefix, last_lim, ctx = _last
    if prefix and last_lim == lim and data.startswith(prefix):
        return ctx, len(prefix)
    end = _definitions_prefix(data)
    if not end or end > MAX_CACHED_PREFIX:
        return _Context(), 0
    prefix = data[:end]
    key = (prefix, lim)
    ctx = _cache.get(key)
    if ctx is None:
        ctx = s.ctx = _Context()
        pos = 0
        while pos < end:
            pos = _next_message(s, pos)
            start = pos
            tid, pos = _read_type_id(data, pos, s.end)
            pos = _recv_type(s, -tid, pos, start)
            if pos < s.end:
                raise GobError("extra data after a type definition", pos)
        ctx.shared = True
        _cache[key] = ctx
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        try:
            _cache.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread: keep using it
            pass
    _last = (prefix, lim, ctx)
    return ctx, end


def _run(data, target, opts, single, use_cache=True):
    lim = _limits(opts)
    spec = spec_for(target)
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"gob data must be bytes-like, not {type(data).__name__}")
        data = bytes(data)
    try:
        return _decode(data, spec, lim, single, use_cache)
    except GobError:
        raise
    except RecursionError:  # only when the caller leaves less of the stack than MAX_DEPTH needs
        raise GobError("Python's recursion limit reached while decoding (the caller's stack is too deep)") from None
    except MemoryError:
        raise GobError("out of memory decoding the stream") from None
    except Exception as exc:
        raise GobError(f"cannot decode the stream: {type(exc).__name__}: {exc}") from exc


def _decode(data, spec, lim, single, use_cache):
    n = len(data)
    if n > lim.max_size:
        raise GobError(f"stream of {n} bytes exceeds max_size={lim.max_size}", 0)
    s = _State()
    s.data = data
    s.depth = 0
    s.maxd = lim.max_depth
    s.budget = BUDGET_BASE + BUDGET_PER_BYTE * n
    s.limits = lim
    s.top = _top
    s.end = 0
    s.ctx, pos = _context(s, lim, use_cache)
    s.end = pos
    first = pos == 0
    out = []
    max_message = lim.max_message
    while True:
        # Fast path for the usual value message: a one-byte length, then a user type id
        # in two bytes (0xff, id*2); anything else takes Go's general route.
        if pos + 3 < n and data[pos + 2] & 1 == 0 and data[pos + 1] == 0xFF:
            length = data[pos]
            if 2 < length < 128 and length <= max_message and length < n - pos:
                s.end = pos + 1 + length
                tid = data[pos + 2] >> 1
                pos += 3
            else:
                tid, pos = _type_sequence(s, pos, False, first)
        else:
            tid, pos = _type_sequence(s, pos, False, first)
        if tid is None:
            break
        first = True
        v, pos = _top(s.ctx, tid, spec, pos)(s, data, pos, s.end)
        if pos != s.end:
            raise GobError("extra data after a value in its message", pos)
        out.append(v)
        if single:
            if pos < n:
                raise GobError("data after the stream's one value (decode_all reads several)", pos)
            return v
    if single:
        raise GobError("stream holds no value", n)
    return out


def decode(data, target=None, **limits):
    """Decode a stream holding exactly one value (after its type definitions).

    Without ``target`` the value is decoded generically (see ``docs/gob.md``); with one
    (a dataclass, NamedTuple or other supported annotation) it is decoded into it.
    Raises ``GobError`` for any malformed stream, a stream with no value or with more
    than one, or a value that does not fit the target."""
    return _run(data, target, limits, True)


def decode_all(data, target=None, **limits):
    """Decode every value of a stream, in order, into a list (each into ``target``)."""
    return _run(data, target, limits, False)


def stream_types(data, **limits):
    """The wire types defined by the leading type-definition messages of a stream: a dict
    of type id to ``WireType``, gob's predefined types included (only those when the
    stream starts with a value or its definitions run is too long to cache). Shares the
    decoders' cache, so a sender's later frames cost a prefix comparison. Raises
    ``GobError`` for a malformed definition."""
    lim = _limits(limits)
    s = _State()
    s.data = bytes(data)
    s.depth = 0
    s.maxd = lim.max_depth
    s.budget = BUDGET_BASE + BUDGET_PER_BYTE * len(s.data)
    s.limits = lim
    s.top = _top
    s.end = 0
    try:
        ctx, _ = _context(s, lim, True)
    except GobError:
        raise
    except Exception as exc:
        raise GobError(f"cannot read the type definitions: {type(exc).__name__}: {exc}") from exc
    return ctx.types


def definitions_length(data):
    """The length in bytes of a stream's leading run of type-definition messages (0 when
    it starts with a value); not validated (``stream_types`` parses them)."""
    return _definitions_prefix(data)
