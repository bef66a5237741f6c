"""StatMessage: the JSON-lines form users read, and its times."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statserver.model import StatMessage, rfc3339_ns

KEYS = [
    "namespace",
    "name",
    "pod_name",
    "average_concurrent_requests",
    "average_proxied_concurrent_requests",
    "request_count",
    "proxied_request_count",
    "process_uptime",
    "timestamp",
    "received_at",
]


@pytest.mark.parametrize(
    "ns, text",
    [
        (1552572567770464932, "2019-03-14T14:09:27.770464932Z"),
        (1552572567500000000, "2019-03-14T14:09:27.5Z"),
        (1552572567000000000, "2019-03-14T14:09:27Z"),
        (0, "1970-01-01T00:00:00Z"),
        (-62135596800 * 10**9, "0001-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
    ],
)
def test_rfc3339_like_go(ns, text):
    assert rfc3339_ns(ns) == text


def test_to_json_has_every_field_in_order():
    m = StatMessage(
        "ns",
        "rev",
        "pod",
        1.5,
        0.5,
        3.0,
        1.0,
        2.25,
        timestamp=1552572567770464932,
        received_at=1552572568000000000,
        timestamp_offset=3600,
    )
    line = m.to_json()
    assert "\n" not in line
    d = json.loads(line)
    assert list(d) == KEYS
    assert d["timestamp"] == "2019-03-14T14:09:27.770464932Z"
    assert d["received_at"] == "2019-03-14T14:09:28Z"
    assert d["process_uptime"] == 2.25
    assert d == m.to_dict()


def test_non_finite_floats_become_null():
    d = json.loads(
        StatMessage(
            "ns", "rev", average_concurrent_requests=math.nan, request_count=math.inf
        ).to_json()
    )
    assert d["average_concurrent_requests"] is None
    assert d["request_count"] is None
    assert d["timestamp"] is None and d["received_at"] is None


@given(
    st.text(),
    st.text(),
    st.text(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-62135596800 * 10**9, max_value=253402300799 * 10**9),
)
def test_to_json_matches_json_dumps(namespace, name, pod, value, ns):
    m = StatMessage(namespace, name, pod, value, request_count=value, timestamp=ns, received_at=ns)
    assert json.loads(m.to_json()) == m.to_dict()
