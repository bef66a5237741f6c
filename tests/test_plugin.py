"""The ``twist statserver`` dropin: discovered by Twisted's plugin system, and lazy."""

import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

ROOT = Path(__file__).resolve().parent.parent


def test_one_statserver_plugin():
    makers = [p for p in getPlugins(IServiceMaker) if p.tapname == "statserver"]
    assert len(makers) == 1
    maker = makers[0]
    assert maker.description
    from statserver.tap import Options

    assert isinstance(maker.options(), Options)


def test_dropin_imports_nothing_heavy():
    # twist imports every dropin just to list the commands: ours must not pull in the server.
    code = (
        "import sys, twisted.plugins.statserver_plugin as p; "
        "print(sorted(m for m in ('statserver', 'statserver.tap', 'statserver.server.service', "
        "'autobahn', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_no_init_in_twisted_plugins():
    # An __init__.py here would shadow Twisted's own twisted/ and twisted/plugins/ packages.
    assert (ROOT / "twisted" / "plugins" / "statserver_plugin.py").exists()
    assert not (ROOT / "twisted" / "__init__.py").exists()
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()
