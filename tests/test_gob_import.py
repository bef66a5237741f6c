"""statserver.gob and statserver.wire.gobstat stay independent of Twisted and autobahn."""

import subprocess
import sys


def test_gob_imports_without_twisted_or_autobahn():
    code = (
        "import sys, statserver.gob, statserver.wire.gobstat\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('twisted', 'autobahn'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
