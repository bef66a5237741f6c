"""Reading client frames: unmasking, and the fast path for whole data frames.

A Knative sender's read is, almost always, one or a few whole frames of one message each:
a stat a frame from the seed's senders and every queue-proxy, a batch from an activator.
autobahn's receive path takes each of them through its general state machine (a frame
header object, about fifteen handler calls, the payload sliced out of a buffer twice).
``split_frames`` cuts such a read into its messages at once; ``StatsServerProtocol``
hands everything else (control frames, fragments, a frame split over reads, anything
autobahn would refuse) to autobahn, which stays the judge of what is valid.
"""

import os

from autobahn.websocket.xormasker import create_xor_masker

from statserver.constants import PURE_ENV

# Up to this many bytes, one big-integer XOR unmasks faster than autobahn's masker
# object (0.3-0.7 µs against 2.2-2.4 µs with autobahn 26's native masker); above it the
# native one wins (8 KB: 2.7 µs against 9.8).
BIGINT_UNMASK_MAX = 2048

_TEXT_FIN, _BINARY_FIN = 0x81, 0x82  # FIN set, no RSV bits, opcode 1 or 2
_MASKED = 0x80
_MAX_LENGTH = (1 << 63) - 1  # RFC 6455: the most significant bit of a 64-bit length is 0


def unmask(data, mask, offset=0):
    """``data`` XORed with the 4-byte WebSocket ``mask``, starting ``offset`` bytes into
    the frame's payload (a frame can arrive over several reads)."""
    offset &= 3
    if offset:
        mask = mask[offset:] + mask[:offset]
    n = len(data)
    if n > BIGINT_UNMASK_MAX:
        return create_xor_masker(mask, n).process(data)
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def pure_split_frames(data, max_payload):
    """The whole, unfragmented, masked data frames at the start of ``data``:
    ``[(payload, is_binary, end), ...]``, each payload unmasked and ``end`` the offset
    just past its frame. Stops at the first frame that is not one (a control frame, a
    fragment, RSV bits, no mask, a length not in its shortest form, a payload over
    ``max_payload`` bytes when ``max_payload`` is positive) or is not all in ``data``:
    the bytes from the last ``end`` on (all of them when the list is empty) are for
    autobahn's own parser."""
    frames = []
    pos, n = 0, len(data)
    while n - pos >= 6:
        first, second = data[pos], data[pos + 1]
        if (first != _BINARY_FIN and first != _TEXT_FIN) or not second & _MASKED:
            break
        length = second & 0x7F
        if length < 126:
            head = pos + 6
        elif length == 126:
            head = pos + 8
            if head > n:
                break
            length = int.from_bytes(data[pos + 2:pos + 4], "big")
            if length < 126:
                break
        else:
            head = pos + 14
            if head > n:
                break
            length = int.from_bytes(data[pos + 2:pos + 10], "big")
            if length < 0x10000 or length > _MAX_LENGTH:
                break
        end = head + length
        if end > n or 0 < max_payload < length:
            break
        payload = unmask(data[head:end], data[head - 4:head]) if length else b""
        frames.append((payload, first == _BINARY_FIN, end))
        pos = end
    return frames


def compiled_split_frames():
    """``statserver._speedups.split_frames``, or None where it is not built."""
    try:
        from statserver._speedups import split_frames
    except ImportError:
        return None
    return split_frames


#: ``pure_split_frames``, compiled unless ``STATSERVER_PURE=1`` (or not built).
split_frames = (os.environ.get(PURE_ENV) != "1" and compiled_split_frames()) or pure_split_frames
