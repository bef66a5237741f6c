"""Knative's ``StatMessage`` over gob (v0.2–v0.15 senders), both ways."""

from statserver.model import StatMessage  # noqa: F401


def decode_stat_frame(payload, received_at=None):
    """Decode one WebSocket binary frame holding a fresh-encoder gob stream of a Knative
    ``StatMessage`` of any gob era; return a ``StatMessage`` or raise ``GobError``."""
    raise NotImplementedError


def encode_stat_frame(message, era="v10"):
    """Encode a ``StatMessage`` as the gob stream a fresh Go encoder of that era writes."""
    raise NotImplementedError
