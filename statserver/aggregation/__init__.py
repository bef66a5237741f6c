"""Knative's windowed averages of the stats, per revision: a sink and what reads it.

- ``aggregator``: the sink; per revision, the stable and panic averages of concurrency
  and requests per second, as Knative's autoscaler computes them;
- ``windows``: Knative's bucket arithmetic, number for number;
- ``collector``: the averages on ``/metrics``;
- ``api``: the averages (and the open connections) as JSON under ``/api/v1/``.
"""
