"""Hand assembly of gob streams for the decoder's tests (independent of the encoder, so the
decoder is checked against the format, not against our own encoder)."""

import struct


def u(x):
    """A gob unsigned integer."""
    if x < 128:
        return bytes([x])
    raw = x.to_bytes((x.bit_length() + 7) // 8, "big")
    return bytes([256 - len(raw)]) + raw


def i(x):
    """A gob signed integer."""
    return u(~x << 1 | 1 if x < 0 else x << 1)


def f(x):
    """A gob float: the float's bytes reversed, as a uint."""
    return u(int.from_bytes(struct.pack("<d", x), "big"))


def s(b):
    """A gob string or []byte."""
    if isinstance(b, str):
        b = b.encode()
    return u(len(b)) + b


def msg(body):
    return u(len(body)) + body


def _common(name, tid):
    return (u(1) + s(name) + u(1) if name else u(2)) + i(tid) + u(0)


def struct_type(tid, name, fields):
    """A type-definition message for a struct with fields [(name, type id)]."""
    body = u(1) + _common(name, tid) + u(1) + u(len(fields))
    for fname, fid in fields:
        body += u(1) + s(fname) + u(1) + i(fid) + u(0)
    return msg(i(-tid) + u(3) + body + u(0) + u(0))


def slice_type(tid, elem, name=""):
    return msg(i(-tid) + u(2) + u(1) + _common(name, tid) + u(1) + i(elem) + u(0) + u(0))


def array_type(tid, elem, length, name=""):
    body = u(1) + _common(name, tid) + u(1) + i(elem) + u(1) + i(length) + u(0)
    return msg(i(-tid) + u(1) + body + u(0))


def map_type(tid, key, elem, name=""):
    body = u(1) + _common(name, tid) + u(1) + i(key) + u(1) + i(elem) + u(0)
    return msg(i(-tid) + u(4) + body + u(0))


def encoder_type(tid, name, kind="gob"):
    """A GobEncoder ("gob"), BinaryMarshaler ("binary") or TextMarshaler ("text") type."""
    delta = {"gob": 5, "binary": 6, "text": 7}[kind]
    return msg(i(-tid) + u(delta) + u(1) + _common(name, tid) + u(0) + u(0))


def value(tid, body):
    return msg(i(tid) + body)


def single(tid, body):
    """A top-level non-struct value: its 0 field delta, then the value."""
    return value(tid, u(0) + body)


def fields(*pairs):
    """A struct body from (field number, encoded value) pairs, with its terminator."""
    out, last = b"", -1
    for num, enc in pairs:
        out += u(num - last) + enc
        last = num
    return out + u(0)


def go_time(unix, nanos=0, offset=None):
    """Go's time.MarshalBinary bytes, as Go writes them; offset in seconds east of UTC,
    None for UTC. (Go truncates the minutes towards zero and sends the remaining seconds
    as a byte, version 2, when there are any.)"""
    if offset is None:
        minutes, seconds = -1, 0
    else:
        minutes = abs(offset) // 60 * (1 if offset >= 0 else -1)
        seconds = offset - minutes * 60
    out = bytes([2 if seconds else 1]) + (unix + 62135596800).to_bytes(8, "big", signed=True)
    out += nanos.to_bytes(4, "big", signed=True) + minutes.to_bytes(2, "big", signed=True)
    if seconds:
        out += bytes([seconds & 0xFF])
    return out
