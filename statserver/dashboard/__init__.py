"""The live dashboard at ``/dashboard/`` (``docs/dashboard.md``).

``install(server, aggregator, reactor=..., history=...)`` mounts it on a ``StatsServer``'s
tree and returns its ``Dashboard`` service (to be started with the server's).
"""

from statserver.dashboard.service import PANIC_THRESHOLD, Dashboard
from statserver.dashboard.web import CONTENT_SECURITY_POLICY, DashboardResource, RedirectToDashboard

__all__ = ["CONTENT_SECURITY_POLICY", "PANIC_THRESHOLD", "Dashboard", "install"]


def install(server, aggregator, *, reactor, history=None, interval=1.0):
    """Serve the dashboard of ``server`` and ``aggregator`` at ``/dashboard/`` and send a
    browser's plain ``GET /`` there; return the ``Dashboard`` service."""
    dashboard = Dashboard(server, aggregator, reactor=reactor, history=history,
                          interval=interval)
    server.root.putChild(b"dashboard", DashboardResource(dashboard))
    server.root.browser_page = RedirectToDashboard()
    return dashboard
