"""The ``twist statserver`` plugin.

A lazy dropin: ``twist`` imports every dropin to list its plugins, so this module imports
nothing of statserver; ``statserver.tap`` is imported only when the command runs.
"""

from twisted.application.service import ServiceMaker

statserver = ServiceMaker(
    "statserver",
    "statserver.tap",
    "Knative's autoscaler stats server: WebSocket stats from every Knative release",
    "statserver",
)
