"""Tasks written in Python: one module built into one WebAssembly component.

The work is in `componentize.py` (standard library only, so that the
`wasmpool` command can run it as a script too); this package gives it the
task world the extension was built with and raises `BuildError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import BuildError
from .componentize import BuildFailed, componentize_py_version, default_cache_dir

__all__ = ["build", "build_inline", "cache_path", "componentize_py_version", "default_cache_dir"]

# How many packed sources of inline tasks (`build_inline`, a few KB each)
# the cache keeps, the least recently used going first.
MAX_INLINE_SOURCES = 64


def build(path: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
          cache_dir: str | os.PathLike[str] | None | bool = True, packages: Sequence[str] = ()) -> Path:
    """Builds the Python module at `path` into a task component; returns its path.

    `out`: where to write the component (default: the cache).
    `packages`: pure-Python packages installed in this Python's environment
    for the module to import, carried in the component.
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
        return componentize.build(path, wit=_native.TASK_WORLD_WIT, out=out, cache_dir=cache_dir, packages=packages)
    except BuildFailed as e:
        raise BuildError(str(e)) from None


def cache_path(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None | bool = True,
               packages: Sequence[str] = ()) -> Path | None:
    """Where the component built from the module at `path` is (or would be) cached."""
    from . import componentize
    from .. import _native

    try:
        return componentize.cache_path(path, wit=_native.TASK_WORLD_WIT, cache_dir=cache_dir, packages=packages)
    except BuildFailed as e:
        raise BuildError(str(e)) from None


def build_inline(text: str) -> Path:
    """Builds the source of a tasks module packed from functions
    (`wasmpool._inline.pack`) into a task component; returns its path.
    The source is written, as `inline_<digest>.py`, into the cache's
    private folder `inline/` (or a new private temporary folder without a
    cache), so that tracebacks can name it and a build is cached by
    content as a `tasks.py`'s is."""
    import contextlib
    import hashlib
    import tempfile

    from . import componentize

    name = f"inline_{hashlib.sha256(text.encode()).hexdigest()[:16]}.py"
    data = text.encode()
    cache = componentize.default_cache_dir()
    folder = componentize._private_dir(cache / "inline") if cache is not None else None
    if folder is None:
        # No cache: a folder of this process's own, removed at its exit
        # (the pool reads the component when it is made). Every such pool
        # builds the interpreter again.
        import atexit
        import shutil

        folder = Path(tempfile.mkdtemp(prefix="wasmpool-inline-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / name
        componentize._replace(path, data)
        return build(path, out=folder / "tasks.wasm", cache_dir=False)
    path = folder / name
    if not (path.is_file() and componentize._trusted(path) and path.read_bytes() == data):
        componentize._replace(path, data)
    else:
        with contextlib.suppress(OSError):
            os.utime(path)
    sources = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith("inline_") and entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                sources.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
    for _, old in sorted(sources, reverse=True)[MAX_INLINE_SOURCES:]:
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return build(path)
