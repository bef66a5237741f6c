"""The aggregator's figures on ``/metrics``: a prometheus_client custom collector.

Every scrape reads the averages at the scrape's time (no gauge is stored), so a revision
the aggregator has dropped is simply absent from the next scrape.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from statserver.text import utf8_safe


class AggregateCollector:
    """Yields, for every revision an :class:`statserver.aggregate.Aggregator` tracks::

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

    def collect(self):
        aggregator = self.aggregator
        (concurrency, rps, pods, tracked, refused_revisions, refused_stats,
         skewed) = self._families()
        for r in aggregator.revisions():
            # prometheus_client encodes the body as UTF-8: no lone surrogate may reach it
            namespace, name = utf8_safe(r.namespace), utf8_safe(r.name)
            concurrency.add_metric([namespace, name, "stable"], r.stable_concurrency)
            concurrency.add_metric([namespace, name, "panic"], r.panic_concurrency)
            rps.add_metric([namespace, name, "stable"], r.stable_rps)
            rps.add_metric([namespace, name, "panic"], r.panic_rps)
            pods.add_metric([namespace, name], r.pods)
        tracked.add_metric([], len(aggregator))
        refused_revisions.add_metric([], aggregator.refused_revisions)
        refused_stats.add_metric([], aggregator.refused_stats)
        skewed.add_metric(["ahead"], aggregator.skewed_ahead)
        skewed.add_metric(["behind"], aggregator.skewed_behind)
        return (concurrency, rps, pods, tracked, refused_revisions, refused_stats, skewed)
