"""The floor under ``ingest.py --many``: the least CPU a Twisted server spends on that load.

A stats server reduced to what no WebSocket server on Twisted's reactor can skip: accept
the connection, answer the upgrade (RFC 6455's accept key; no validation, no options, no
timers), read each frame and count it (no unmasking, no decoding, no sinks), answer a
close. ``GET /metrics`` gives the count as ``statserver_stats_received_total``, so that
``ingest.py`` measures it as it measures the real servers. Not a server to use: it takes
anything, and is only as correct as the Go activator's frames need.

    python benchmarks/twisted_floor.py PORT
"""

import base64
import hashlib
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
_CLOSE, _TEXT, _BINARY = 8, 1, 2


class Counter:
    frames = 0


class FloorProtocol(Protocol):
    """One connection: an HTTP request, then (if it was an upgrade) WebSocket frames."""

    def connectionMade(self):
        self.buffer = b""
        self.upgraded = False

    def dataReceived(self, data):
        self.buffer += data
        if not self.upgraded and not self._request():
            return
        self._frames()

    def _request(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
        lines = head.split(b"\r\n")
        headers = dict(line.split(b":", 1) for line in lines[1:] if b":" in line)
        headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
        key = headers.get(b"sec-websocket-key")
        if key is None:  # /metrics, or anything else
            body = f"statserver_stats_received_total {Counter.frames}\n".encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
            self.transport.loseConnection()
            return False
        accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                             + b"\r\n\r\n")
        self.upgraded = True
        return True

    def _frames(self):
        data, at = self.buffer, 0
        while len(data) - at >= 2:
            opcode, length, header = data[at] & 0x0F, data[at + 1] & 0x7F, 2
            if length == 126:
                length, header = int.from_bytes(data[at + 2:at + 4], "big"), 4
            elif length == 127:
                length, header = int.from_bytes(data[at + 2:at + 10], "big"), 10
            header += 4  # a client's frames are masked
            if len(data) - at < header + length:
                break
            at += header + length
            if opcode in (_TEXT, _BINARY):
                Counter.frames += 1
            elif opcode == _CLOSE:
                self.transport.write(b"\x88\x02\x03\xe8")  # 1000, normal closure
                self.transport.loseConnection()
        self.buffer = data[at:]


def main(port):
    factory = Factory.forProtocol(FloorProtocol)
    reactor.listenTCP(port, factory, backlog=4096, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
