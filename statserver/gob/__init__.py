"""A Go ``encoding/gob`` codec. Imports nothing from Twisted or autobahn."""

from statserver.gob.decoder import decode, decode_all
from statserver.gob.encoder import Encoder, encode  # noqa: F401  (types: statserver.gob.gotypes)
from statserver.gob.errors import GobError
from statserver.gob.values import FrozenStruct, GoInterface, GoOpaque, GoTime

__all__ = ["GobError", "GoInterface", "GoOpaque", "GoTime", "FrozenStruct", "decode", "decode_all"]
