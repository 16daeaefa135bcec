"""Tasks written in Python: one module built into one WebAssembly component.

The work is in `componentize.py` (standard library only, so that the
`wasmpool` command can run it as a script too); this package gives it the
task world the extension was built with and raises `BuildError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BuildError
from .componentize import BuildFailed, componentize_py_version, default_cache_dir

__all__ = ["build", "cache_path", "componentize_py_version", "default_cache_dir"]


def build(path: str | os.PathLike, *, out: str | os.PathLike | None = None,
          cache_dir: str | os.PathLike | None | bool = True) -> Path:
    """Builds the Python module at `path` into a task component; returns its path.

    `out`: where to write the component (default: the cache).
    `cache_dir`: True for the default cache, a folder, or False for none
    (then `out` is required).
    Raises `BuildError` with the reason (componentize-py missing, a
    native extension imported, a syntax error where this Python can tell).
    The module's code does not run here: its top-level code runs when a
    pool loads the component, and what it raises fails the pool
    (`ModuleLoadError`).
    """
    from . import componentize
    from .. import _native

    try:
        return componentize.build(path, wit=_native.TASK_WORLD_WIT, out=out, cache_dir=cache_dir)
    except BuildFailed as e:
        raise BuildError(str(e)) from None


def cache_path(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None | bool = True) -> Path | None:
    """Where the component built from the module at `path` is (or would be) cached."""
    from . import componentize
    from .. import _native

    try:
        return componentize.cache_path(path, wit=_native.TASK_WORLD_WIT, cache_dir=cache_dir)
    except BuildFailed as e:
        raise BuildError(str(e)) from None
