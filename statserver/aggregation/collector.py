"""The aggregator's figures on ``/metrics``: a prometheus_client custom collector.

Every scrape reads the averages at the scrape's time (no gauge is stored), so a revision
the aggregator has dropped is simply absent from the next scrape. The server's
``/metrics`` renders them with :meth:`AggregateCollector.exposition`, in slices between
which the reactor runs on (five series per revision: about 0.1 ms each to render, a
second or more at 10,000 revisions through prometheus_client).
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from statserver.text import utf8_safe

#: Revisions whose series one slice of the render formats.
SLICE = 200


def _label(value):
    """A label value as the text exposition format writes it (UTF-8-safe, as collect())."""
    return utf8_safe(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Families:
    """A registry stand-in for ``generate_latest``: these families, nothing else."""

    def __init__(self, families):
        self._families = families

    def collect(self):
        return self._families


class AggregateCollector:
    """Yields, for every revision an :class:`statserver.aggregation.aggregator.Aggregator` tracks::

        statserver_revision_concurrency{namespace,name,window="stable"|"panic"}
        statserver_revision_rps{namespace,name,window="stable"|"panic"}
        statserver_revision_pods{namespace,name}

    and the aggregator's own counts (revisions tracked, stats and revisions refused, stats
    placed at their receive time for a skewed sender clock).
    Register it with ``registry.register(AggregateCollector(aggregator))``.
    """

    def __init__(self, aggregator):
        self.aggregator = aggregator

    def _families(self):
        return (
            GaugeMetricFamily(
                "statserver_revision_concurrency",
                "Average concurrent requests of a revision over the stable or panic window, "
                "as Knative's autoscaler computes it (proxied requests excluded).",
                labels=["namespace", "name", "window"]),
            GaugeMetricFamily(
                "statserver_revision_rps",
                "Average requests per second of a revision over the stable or panic window, "
                "as Knative's autoscaler computes it (proxied requests excluded).",
                labels=["namespace", "name", "window"]),
            GaugeMetricFamily(
                "statserver_revision_pods",
                "Distinct pods that sent stats for a revision within the stable window.",
                labels=["namespace", "name"]),
            GaugeMetricFamily(
                "statserver_aggregation_revisions",
                "Revisions whose windowed averages are kept."),
            CounterMetricFamily(
                "statserver_aggregation_refused_revisions",
                "Stats not aggregated because --max-revisions revisions were already tracked."),
            CounterMetricFamily(
                "statserver_aggregation_refused_stats",
                "Stats not aggregated because a value was not finite or the stat had no time."),
            CounterMetricFamily(
                "statserver_aggregation_skewed_stats",
                "Stats placed at their receive time because the sender's timestamp was more "
                "than --max-clock-skew ahead of or behind it.",
                labels=["direction"]),
        )

    def describe(self):
        return self._families()

    def exposition(self, parts):
        """A generator that appends the text exposition of :meth:`collect` to ``parts``
        (a list of bytes), yielding after every slice of work (see ``statserver.server.render``)."""
        aggregator = self.aggregator
        revisions = []
        for chunk in aggregator.revisions_in_slices(SLICE):
            revisions.extend(chunk)
            yield
        concurrency, rps, pods, *counts = self._families()
        for family, lines in ((concurrency, _window_lines), (rps, _window_lines),
                              (pods, _pods_lines)):
            # the family's HELP and TYPE lines, then its samples written here
            parts.append(generate_latest(_Families([family])))
            for i in range(0, len(revisions), SLICE):
                text = "".join(lines(family.name, r) for r in revisions[i:i + SLICE])
                # never fails on any string: a name that is not UTF-8 comes out escaped
                parts.append(text.encode("utf-8", "backslashreplace"))
                yield
        self._add_counts(counts)
        parts.append(generate_latest(_Families(counts)))

    def collect(self):
        aggregator = self.aggregator
        concurrency, rps, pods, *counts = self._families()
        for r in aggregator.revisions():
            # prometheus_client encodes the body as UTF-8: no lone surrogate may reach it
            namespace, name = utf8_safe(r.namespace), utf8_safe(r.name)
            concurrency.add_metric([namespace, name, "stable"], r.stable_concurrency)
            concurrency.add_metric([namespace, name, "panic"], r.panic_concurrency)
            rps.add_metric([namespace, name, "stable"], r.stable_rps)
            rps.add_metric([namespace, name, "panic"], r.panic_rps)
            pods.add_metric([namespace, name], r.pods)
        self._add_counts(counts)
        return (concurrency, rps, pods, *counts)

    def _add_counts(self, counts):
        """The aggregator's own counts, into the families after the three per revision."""
        aggregator = self.aggregator
        tracked, refused_revisions, refused_stats, skewed = counts
        tracked.add_metric([], len(aggregator))
        refused_revisions.add_metric([], aggregator.refused_revisions)
        refused_stats.add_metric([], aggregator.refused_stats)
        skewed.add_metric(["ahead"], aggregator.skewed_ahead)
        skewed.add_metric(["behind"], aggregator.skewed_behind)


def _window_lines(name, r):
    labels = f'name="{_label(r.name)}",namespace="{_label(r.namespace)}"'  # sorted, as
    # prometheus_client writes them
    if name == "statserver_revision_concurrency":
        stable, panic = r.stable_concurrency, r.panic_concurrency
    else:
        stable, panic = r.stable_rps, r.panic_rps
    return (f'{name}{{{labels},window="stable"}} {floatToGoString(stable)}\n'
            f'{name}{{{labels},window="panic"}} {floatToGoString(panic)}\n')


def _pods_lines(name, r):
    return (f'{name}{{name="{_label(r.name)}",namespace="{_label(r.namespace)}"}} '
            f"{floatToGoString(r.pods)}\n")
