"""``StatsServer``'s arguments: nonsense refused at once, and the connection limits it
derives from the open-files limit (none where that limit is unknown)."""

import pytest
from memoryreactor import MemoryReactor
from twisted.internet.defer import Deferred

from statserver.server import service as service_module
from statserver.server.channel import FD_RESERVE
from statserver.server.service import StatsServer


class _Endpoint:
    """Never binds."""

    def listen(self, factory):
        return Deferred()


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"queue_size": 0}, "queue_size"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"ping_interval": -1}, "must not be negative"),
        ({"shutdown_timeout": -0.5}, "must not be negative"),
    ],
)
def test_nonsense_is_refused_at_once(arguments, words):
    with pytest.raises(ValueError, match=words):
        StatsServer(_Endpoint(), reactor=MemoryReactor(), **arguments)


def test_the_global_reactor_by_default():
    from twisted.internet import reactor

    assert StatsServer(_Endpoint()).factory.reactor is reactor


@pytest.mark.parametrize("limit, expected", [(None, None), (1000, 1000 - FD_RESERVE)])
def test_the_connection_limits_follow_the_open_files_limit_where_known(
    monkeypatch, limit, expected
):
    monkeypatch.setattr(service_module, "open_files_limit", lambda: limit)
    server = StatsServer(_Endpoint(), reactor=MemoryReactor())
    default_max_open = server.site.max_open
    server.privilegedStartService()
    try:
        if expected is None:
            assert server.max_connections is None
            assert server.site.max_open == default_max_open
        else:
            assert server.site.max_open == expected
            assert 0 < server.max_connections < expected
    finally:
        server.stopService()
