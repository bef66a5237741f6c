"""Only the optional C accelerator: the package's metadata is in setup.cfg.

``optional=True``: where the extension cannot be built (no C compiler, no Python
headers) the install goes on without it and statserver runs its pure-Python code.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("statserver._speedups", ["statserver/_speedups.c"], optional=True),
    ],
)
