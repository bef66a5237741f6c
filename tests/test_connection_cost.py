"""What a connection costs the server before its first frame: autobahn's debug line of
the connection's options is formatted only if debug logging wants it."""

import pprint

import pytest_twisted
from wsclient import bounded, connect, port_of, start_server


@pytest_twisted.ensureDeferred
async def test_options_are_pretty_printed_only_for_a_debug_log(monkeypatch):
    from autobahn.websocket import protocol

    calls = []
    real = pprint.pformat

    def counting(obj, *args, **kwargs):
        calls.append(1)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(pprint, "pformat", counting)
    if protocol.pformat is real:  # autobahn's own reference, where nothing replaced it
        monkeypatch.setattr(protocol, "pformat", counting)
    server = await start_server()
    try:
        client = await connect(port_of(server))
        assert calls == []  # none for the server's connection (nor the client's)
        client.sendClose()
        await bounded(client.closed)
    finally:
        await bounded(server.stopService())

    # Where the debug line is logged, its text is autobahn's own.
    options = [("openHandshakeTimeout", 5, "WebSocketServerFactory")] * 3
    assert f"{protocol.pformat(options)}" == str(protocol.pformat(options)) == real(options)
