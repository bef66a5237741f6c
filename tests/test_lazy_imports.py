"""``statserver.StatsServer`` and ``statserver.server.StatsServer`` are imported on first
use: importing the package, or one module of ``statserver.server``, does not import the
server (and with it autobahn and twisted.web)."""

import sys

import pytest
import pytest_twisted
from processes import run_process

CODE = """\
import sys
import statserver, statserver.server.metrics
print("service" if "statserver.server.service" in sys.modules else "lazy")
from statserver import StatsServer
from statserver.server import StatsServer as Again
from statserver.server.service import StatsServer as Real
print(StatsServer is Again is Real)
"""


@pytest_twisted.ensureDeferred
async def test_the_server_is_imported_on_first_use():
    code, out, err = await run_process(sys.executable, ["-c", CODE])
    assert code == 0, err
    assert out.split() == ["lazy", "True"]


@pytest.mark.parametrize("module", ["statserver", "statserver.server"])
def test_an_unknown_name_is_an_attribute_error_naming_it(module):
    imported = __import__(module, fromlist=["_"])
    with pytest.raises(AttributeError, match=rf"module '{module}' has no attribute 'Nope'"):
        imported.Nope  # noqa: B018 - the lookup is the test
