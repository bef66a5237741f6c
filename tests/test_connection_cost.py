"""What a connection costs the server beyond its frames: the arguments of autobahn's
debug log lines (its options pretty-printed, its steps named with ``hltype``/``hlval``)
are built only if debug logging wants them, and then read as autobahn's own."""

import pprint

import autobahn.util
import pytest_twisted
from wsclient import bounded, connect, port_of, start_server


@pytest_twisted.ensureDeferred
async def test_debug_line_arguments_are_built_only_for_a_debug_log(monkeypatch):
    from autobahn.twisted import websocket
    from autobahn.websocket import protocol

    calls = []
    real = pprint.pformat

    def counting(name, func):
        def count(*args, **kwargs):
            calls.append(name)
            return func(*args, **kwargs)
        return count

    monkeypatch.setattr(pprint, "pformat", counting("pformat", real))
    if protocol.pformat is real:  # autobahn's own reference, where nothing replaced it
        monkeypatch.setattr(protocol, "pformat", counting("pformat", real))
    # hltype and hlval style their text with these, looked up when they run
    monkeypatch.setattr(autobahn.util, "_qn", counting("hltype", autobahn.util._qn))
    monkeypatch.setattr(autobahn.util, "hl", counting("hl", autobahn.util.hl))
    server = await start_server()
    try:
        client = await connect(port_of(server))
        client.sendMessage(b"\x01not a stat")
        client.sendClose()
        await bounded(client.closed)
        # none for the server's connection (nor the client's, in the same modules)
        assert calls == []
    finally:
        await bounded(server.stopService())

    # Where a debug line is logged, its text is autobahn's own.
    monkeypatch.undo()
    options = [("openHandshakeTimeout", 5, "WebSocketServerFactory")] * 3
    assert f"{protocol.pformat(options)}" == str(protocol.pformat(options)) == real(options)
    for module in (protocol, websocket):
        method = server.factory.protocol.onMessage
        assert f"{module.hltype(method)}" == autobahn.util.hltype(method)
        assert f"{module.hlval(42)}" == autobahn.util.hlval(42)
        assert f"{module.hlval('x', color='blue')}" == autobahn.util.hlval("x", color="blue")
