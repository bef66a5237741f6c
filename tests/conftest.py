"""Fixtures shared by the test modules."""

import pytest
from protobuf_decoders import compiled

from statserver import formats


@pytest.fixture(params=["pure", "compiled"])
def protobuf_decoder(request, monkeypatch):
    """Each protobuf decoder in turn, installed as ``formats.decode_protobuf`` (so that
    ``decode_frame`` uses it too) whatever ``STATSERVER_PURE`` chose."""
    decode = formats.pure_decode_protobuf if request.param == "pure" else compiled()
    monkeypatch.setattr(formats, "decode_protobuf", decode)
    return decode
