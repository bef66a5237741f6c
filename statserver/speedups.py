"""Choosing between the optional compiled accelerator (``statserver._speedups``) and the
pure-Python functions it mirrors: compiled where it is built, unless ``STATSERVER_PURE=1``
asks for the pure ones (the reference, and the fallback)."""

import os

from statserver.constants import PURE_ENV


def compiled(name):
    """``statserver._speedups.<name>``, or None where the extension is not built."""
    try:
        from statserver import _speedups
    except ImportError:
        return None
    return getattr(_speedups, name)


def choose(compiled_function, pure):
    """``compiled_function()`` (a ``compiled_*`` getter), unless ``STATSERVER_PURE=1`` or
    it answers None: then ``pure``. The getter is not called under ``STATSERVER_PURE=1``."""
    return (os.environ.get(PURE_ENV) != "1" and compiled_function()) or pure
