"""The stats the tests send and record: the one builder of ``StatMessage`` instances that
every test module uses."""

from statserver.model import StatMessage

SECOND = 1_000_000_000
T = 1_700_000_000 * SECOND  # 2023-11-14T22:13:20Z


def stat(name, pod="activator-0", concurrency=1.5, requests=2.0, *, namespace="ns", **fields):
    """A stat of revision ``namespace/name`` from ``pod`` with ``concurrency`` average
    concurrent requests and ``requests`` requests; any other field by keyword."""
    return StatMessage(namespace, name, pod, average_concurrent_requests=concurrency,
                       request_count=requests, **fields)


def nth(i, **fields):
    """Stat number ``i`` of a run: revision ``ns/rev-<i>`` with ``i`` requests, received
    ``i`` seconds after ``T``; other fields as ``stat`` takes them."""
    return stat(f"rev-{i}", **{"requests": float(i), "received_at": T + i * SECOND, **fields})


def run(n, **fields):
    """Stats ``nth(0)`` to ``nth(n - 1)``, each with ``fields``."""
    return [nth(i, **fields) for i in range(n)]
