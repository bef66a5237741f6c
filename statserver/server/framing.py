"""Reading client frames: unmasking, and the fast path for whole data frames.

A Knative sender's read is, almost always, one or a few whole frames of one message each:
a stat a frame from the seed's senders and every queue-proxy, a batch from an activator.
autobahn's receive path takes each of them through its general state machine (a frame
header object, about fifteen handler calls, the payload sliced out of a buffer twice).
``split_frames`` cuts such a read into its messages at once (a message of several
fragments too: gorilla/websocket, which every Knative sender uses, cuts a message into
4 KiB frames); ``StatsServerProtocol`` keeps a message cut by the end of a read until the
next, and hands everything else (control frames, anything autobahn would refuse) to
autobahn, which stays the judge of what is valid.
"""

from autobahn.websocket.xormasker import create_xor_masker

from statserver.speedups import choose, compiled

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


def _header(data, pos, n):
    """The frame header at ``pos``: ``(first byte, payload start, payload length)``, or
    ``"short"`` when ``data`` ends inside it, or None when it is not a masked header
    with its length in the shortest form."""
    if n - pos < 2:
        return "short"
    second = data[pos + 1]
    if not second & _MASKED:
        return None
    length = second & 0x7F
    if length < 126:
        head = pos + 6
    elif length == 126:
        head = pos + 8
        if head > n:
            return "short"
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 126:
            return None
    else:
        head = pos + 14
        if head > n:
            return "short"
        length = int.from_bytes(data[pos + 2:pos + 10], "big")
        if length < 0x10000 or length > _MAX_LENGTH:
            return None
    if head > n:
        return "short"
    return data[pos], head, length


def pure_split_frames(data, max_frame, max_message):
    """The whole data messages at the start of ``data``: ``([(payload, is_binary, end,
    frames), ...], more)``, each payload unmasked (its fragments joined), ``end`` the
    offset just past its last frame and ``frames`` how many it took.

    A message qualifies when it is one final frame or fragments in a row (a first
    frame, then continuations, the last final), text or binary, every frame masked,
    without RSV bits, its length in the shortest form and at most ``max_frame`` bytes,
    the message at most ``max_message`` (limits that are 0 are none). Splitting stops
    at the first message that does not qualify or is not all in ``data``; the bytes
    from the last ``end`` on (all of them when the list is empty) are for autobahn's own
    parser, and ``more`` says they begin a message that qualifies as far as it goes but
    is cut short: it can wait for the next read."""
    messages = []
    pos, n = 0, len(data)
    while pos < n:
        parts, size, is_binary = [], 0, None
        while True:
            if pos >= n:
                return messages, True
            first = data[pos]
            if is_binary is None:  # the message's first frame
                if first & 0x7F not in (1, 2):
                    return messages, False
                is_binary = first & 0x7F == 2
            elif first & 0x7F:  # a continuation (opcode 0) and no RSV bit
                return messages, False
            header = _header(data, pos, n)
            if header is None:
                return messages, False
            if header == "short":
                return messages, True
            _, head, length = header
            size += length
            if 0 < max_frame < length or 0 < max_message < size:
                return messages, False
            end = head + length
            if end > n:
                return messages, True
            parts.append((head, end))
            pos = end
            if first & 0x80:
                break
        payload = b"".join(unmask(data[a:b], data[a - 4:a]) for a, b in parts if b > a)
        messages.append((payload, is_binary, pos, len(parts)))
    return messages, False


def compiled_split_frames():
    """``statserver._speedups.split_frames``, or None where it is not built."""
    return compiled("split_frames")


#: ``pure_split_frames``, compiled unless ``STATSERVER_PURE=1`` (or not built).
split_frames = choose(compiled_split_frames, pure_split_frames)
