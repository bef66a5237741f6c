"""Fixtures shared by the test modules."""

import pytest
from protobuf_decoders import compiled

from statserver import aggregate, formats, summary


@pytest.fixture(params=["pure", "compiled"])
def protobuf_decoder(request, monkeypatch):
    """Each protobuf decoder in turn, installed as ``formats.decode_protobuf`` (so that
    ``decode_frame`` uses it too) whatever ``STATSERVER_PURE`` chose."""
    decode = formats.pure_decode_protobuf if request.param == "pure" else compiled()
    monkeypatch.setattr(formats, "decode_protobuf", decode)
    return decode


@pytest.fixture(params=["pure", "compiled"])
def summary_add_stats(request, monkeypatch):
    """Each implementation of the summary's set updates in turn, as ``summary.add_stats``."""
    if request.param == "pure":
        add = summary.pure_add_stats
    else:
        add = summary.compiled_add_stats()
        if add is None:
            compiled()  # fails in CI, skips elsewhere
    monkeypatch.setattr(summary, "add_stats", add)
    return add


@pytest.fixture(params=["pure", "compiled"])
def aggregator_record_many(request, monkeypatch):
    """``Aggregator.record_many`` all in Python, then with its common case compiled."""
    compiled_record_many = None
    if request.param == "compiled":
        compiled_record_many = aggregate.compiled_aggregate_record_many()
        if compiled_record_many is None:
            compiled()  # fails in CI, skips elsewhere
    monkeypatch.setattr(aggregate, "compiled_record_many", compiled_record_many)
    return compiled_record_many
