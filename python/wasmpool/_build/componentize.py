"""Tasks written in Python: one module built into one WebAssembly component.

`build(path)` turns a plain Python module (``tasks.py``: public functions,
one per task) into a component of the ``wasmpool:task`` world in two
parts:

- the **runner component**: CPython, wasmpool's runner and the standard
  modules the module imports, pre-initialised by componentize-py. It holds
  nothing of the module but the names it imports, so it is built once for
  a set of imports (seconds) and cached; every edit that imports nothing
  new reuses it, and the host, which compiles it without the module,
  reuses its compiled code too;
- the module's **source**, appended as the custom section
  ``wasmpool-start``: the host hands it to the start of every new instance,
  which runs it (``wasmpool_runner.py``).

So the build never runs the module's code: its top-level code runs inside
the pool's sandbox, when an instance starts. The component is cached by
content (the source, the runner, the WIT world, componentize-py's
version), beside the runner components.

The cache lives in the user's own cache folder (``$XDG_CACHE_HOME``,
``%LOCALAPPDATA%`` or ``~/.cache``, then ``wasmpool/python``), made private
to the user; a cached file that is not the user's own, or that others may
write, is ignored and rebuilt.

This file needs nothing but the standard library (and componentize-py,
which it runs): the `wasmpool` command runs it as a script, beside
`wasmpool_runner.py`, to build for `wasmpool build` and `wasmpool run
tasks.py` (`python componentize.py --help`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple


class BuildFailed(Exception):
    """A module could not be built; the message says why."""

_HERE = Path(__file__).resolve().parent
_RUNNER = _HERE / "wasmpool_runner.py"
# Built in as the module `wasmpool`: what a task sees of wasmpool (send,
# progress, task_seed).
_IN_TASK = _HERE / "wasmpool_in_task.py"
_WORLD = "task-module"
# Longest a build of a runner component may take, in seconds (it takes
# about 6 s).
BUILD_TIMEOUT = 300
# Longest build output kept in an error, in characters.
_MAX_OUTPUT = 8000


def componentize_py_version() -> str | None:
    """The installed componentize-py's version, or None."""
    try:
        return importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        return None


def default_cache_dir() -> Path | None:
    """Where built components are kept, or None if no private folder is known."""
    for name in ("XDG_CACHE_HOME", "LOCALAPPDATA"):
        value = os.environ.get(name)
        if value and os.path.isabs(value):
            return Path(value) / "wasmpool" / "python"
    home = os.environ.get("HOME")
    if home and os.path.isabs(home):
        return Path(home) / ".cache" / "wasmpool" / "python"
    return None


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _key(source: bytes, module_name: str, tool: str, wit: str, carried: Carried) -> str:
    """The key of a module's component: everything it is made of (the
    modules carried beside it, the runner component's key, which names the
    imports read from them all, and this file, which reads them and lays
    the sources out)."""
    return _digest(b"wasmpool python tasks v3", module_name.encode(), source,
                   json.dumps(carried, sort_keys=True).encode(),
                   _runner_key(_preload(source, carried), tool, wit).encode(), Path(__file__).read_bytes())


# Most files, and bytes of source, carried beside a module (its own
# modules and packages); the start argument bounds the whole too.
MAX_CARRIED_FILES = 1000
MAX_CARRIED_BYTES = 4 << 20
# What a native extension module's file name ends with.
_EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")

# The modules carried beside a module: each by its name, with its source,
# its file (relative to the module's folder) and whether it is a package.
Carried = Dict[str, Dict[str, Any]]


class _Budget:
    """What is left of `MAX_CARRIED_FILES` and `MAX_CARRIED_BYTES`, spent as
    files are found and read, so that a huge folder is refused before it
    is read whole."""

    def __init__(self, for_name: str) -> None:
        self.files = MAX_CARRIED_FILES
        self.bytes = MAX_CARRIED_BYTES
        self._for_name = for_name

    def spend(self, files: int, size: int) -> None:
        self.files -= files
        self.bytes -= size
        if self.files < 0 or self.bytes < 0:
            raise BuildFailed(f"{self._for_name} imports more of its own modules and named packages than a "
                              f"component carries: over {MAX_CARRIED_FILES} files or {MAX_CARRIED_BYTES >> 20} MiB "
                              "of source")


def _carried_modules(source_path: Path, source: bytes, packages: Sequence[str] = ()) -> Carried:
    """The user's own modules the module imports, found beside it as
    Python finds them beside a script (a package folder ``geometry/`` with
    its ``__init__.py``, else ``helpers.py``), and those they import in
    turn, for the component to carry with the module's source. A package
    is carried whole (every ``.py`` in its folder tree), so its relative
    imports find their modules. A name of the component's standard
    library is the standard module's, even with a file of that name beside
    (tasks see the standard library first). Refuses, with `BuildFailed`, a
    native extension beside it or inside a package, a link, a file that
    is not the user's own or that anyone may write, and more than
    `MAX_CARRIED_FILES` files or `MAX_CARRIED_BYTES`. Then the pure-Python
    packages of this Python's environment named in `packages`
    (`_environment_package`), all within the same bounds."""
    folder = source_path.resolve().parent
    carried: Carried = {}
    budget = _Budget(source_path.name)
    pending = [source]
    while pending:
        for name in _imports_inside(pending.pop()):
            top = name.split(".")[0]
            if top in carried or top == "wasmpool" or top == source_path.stem or _is_standard(top):
                continue
            for module, (relative, is_package) in _own_module_files(folder, top, budget).items():
                text = _read_own_source(folder / relative, relative, budget)
                carried[module] = {"source": text, "file": relative, "package": is_package}
                pending.append(text.encode("utf-8", "surrogatepass"))
    for name in dict.fromkeys(packages):  # each once, in order
        if name in carried:
            raise BuildFailed(f"packages names {name}, which is also a module of yours beside {source_path.name}: "
                              "rename one of them")
        carried.update(_environment_package(name, budget))
    return carried


def _environment_package(name: str, budget: _Budget) -> Carried:
    """The files of the package (or module) `name` installed in this
    Python's environment, found as an import would find it but without
    importing it: every ``.py`` of its folder tree, read from files of
    this user's or the system's own that nobody else may write. Refuses
    a name that is not installed, is standard, or is a native extension or
    holds one, saying which."""
    import importlib.util

    python = sys.executable or "python3"
    import importlib.machinery

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise BuildFailed(f"packages: {name!r} is not the name of a top-level package (import it by that name)")
    if name == "wasmpool" or _is_standard(name):
        raise BuildFailed(f"packages: {name} is part of Python (or wasmpool): the component has it already")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise BuildFailed(f"packages: cannot find {name} in {python}'s environment: {e}") from None
    if spec is None:
        raise BuildFailed(f"packages: {name} is not installed in {python}'s environment "
                          f"({python} -m pip install {name}, or build with the Python that has it; the name "
                          "is the one imported, such as yaml for PyYAML)")
    origin = spec.origin
    if isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        raise BuildFailed(f"packages: {name} ({origin}) is a native extension: tasks written in Python can carry "
                          "only Python source (.py files)")
    if spec.submodule_search_locations is not None and origin is None:
        raise BuildFailed(f"packages: {name} is a namespace package (no __init__.py): only regular packages "
                          "are carried")
    # Source files on disk only: not a zip or egg, not bytecode alone, not
    # an import hook's (an editable install's finder, say).
    if (not isinstance(spec.loader, importlib.machinery.SourceFileLoader) or origin is None
            or not origin.endswith(".py") or not os.path.isfile(origin)):
        raise BuildFailed(f"packages: {name} is not installed as Python source files ({origin or 'no file'}): "
                          "only a package of .py files in a folder is carried (not a zip, an egg, bytecode alone "
                          "or an editable install's import hook)")
    if spec.submodule_search_locations is not None:
        if Path(origin).name != "__init__.py" or Path(origin).parent.name != name:
            raise BuildFailed(f"packages: {name} comes from {origin}, not from a folder {name}/ with its "
                              "__init__.py: only such a package is carried")
        package = Path(origin).parent
        base = package.parent
        if package.is_symlink():
            raise BuildFailed(f"packages: {name} ({package}) is a symbolic link: a package is carried only from "
                              "a folder of its own")
        files = _package_files(base, package, budget)
    else:
        base = Path(origin).parent
        budget.spend(1, 0)
        files = {name: (Path(origin).name, False)}
    if name not in files:
        raise BuildFailed(f"packages: {name} ({origin}) could not be read as a folder of Python files")
    carried: Carried = {}
    for module, (relative, is_package) in files.items():
        text = _read_own_source(base / relative, str(base / relative), budget, installed=True)
        carried[module] = {"source": text, "file": relative, "package": is_package}
    return carried


# Modules of the component's CPython (3.14) that an older Python building
# may not know, and names an older one knows that 3.14 no longer has (a
# module of the user's by such a name is carried).
_STANDARD_SINCE = frozenset({"annotationlib", "compression", "graphlib", "tomllib", "zoneinfo"})
_STANDARD_UNTIL = frozenset({
    "aifc", "asynchat", "asyncore", "audioop", "binhex", "cgi", "cgitb", "chunk", "crypt", "distutils",
    "formatter", "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "parser",
    "pipes", "smtpd", "sndhdr", "spwd", "sunau", "symbol", "telnetlib", "uu", "xdrlib",
})


def _is_standard(name: str) -> bool:
    """Whether `name` is a module of the component's standard library, by
    this Python's list (3.10 and later) corrected for 3.14, or, on 3.9, by
    whether this Python's standard library folders hold it (looked up
    there only, without importing it)."""
    if name in _STANDARD_SINCE:
        return True
    if name in _STANDARD_UNTIL:
        return False
    if name in sys.builtin_module_names:
        return True
    known = getattr(sys, "stdlib_module_names", None)
    if known is not None:
        return name in known
    import importlib.machinery
    import sysconfig

    paths = [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")]
    paths += [os.path.join(path, "lib-dynload") for path in paths]
    return importlib.machinery.PathFinder.find_spec(name, paths) is not None


def _own_module_files(folder: Path, top: str, budget: _Budget) -> Dict[str, Tuple[str, bool]]:
    """The files of the user's module `top` beside the tasks module: every
    ``.py`` of its package folder, else its ``top.py`` (module name:
    (file relative to `folder`, whether a package)); none if neither is
    there (a module of the environment, which the component does not
    hold: the import fails inside, naming it)."""
    for entry in folder.glob(f"{top}.*"):
        if entry.name.endswith(_EXTENSION_SUFFIXES) and entry.name.split(".")[0] == top:
            raise BuildFailed(f"{top} ({entry.name}, beside the module) is a native extension: tasks written "
                              "in Python can carry only Python source (.py files)")
    package = folder / top
    if (package / "__init__.py").exists():
        if package.is_symlink():
            raise BuildFailed(f"{top}/ is a symbolic link: a package is carried only from a folder of its own")
        return _package_files(folder, package, budget)
    module_file = folder / f"{top}.py"
    if module_file.exists() or module_file.is_symlink():
        budget.spend(1, 0)
        return {top: (module_file.name, False)}
    return {}


def _package_files(folder: Path, package: Path, budget: _Budget) -> Dict[str, Tuple[str, bool]]:
    """Every ``.py`` file of the package folder `package` and its
    subpackages (folders with an ``__init__.py``), by module name."""
    files: Dict[str, Tuple[str, bool]] = {}
    def unreadable(error: OSError) -> None:
        raise BuildFailed(f"cannot read the package folder {package}: {error.strerror or error}")

    for root, folders, names in os.walk(package, onerror=unreadable):
        here = Path(root)
        kept = []
        for sub in sorted(folders):
            if not sub.isidentifier() or not (here / sub / "__init__.py").exists():
                continue
            if (here / sub).is_symlink():
                raise BuildFailed(f"{(here / sub).relative_to(folder)}/ is a symbolic link: a package is carried "
                                  "only from folders of its own")
            kept.append(sub)
        folders[:] = kept
        relative_root = here.relative_to(folder)
        for name in sorted(names):
            if name.endswith(_EXTENSION_SUFFIXES):
                raise BuildFailed(f"the package {package.name} holds a native extension ({relative_root / name}): "
                                  "tasks written in Python can carry only Python source (.py files)")
            if not name.endswith(".py") or not name[:-3].isidentifier():
                continue
            budget.spend(1, 0)
            parts = list(relative_root.parts) + ([] if name == "__init__.py" else [name[:-3]])
            files[".".join(parts)] = ((relative_root / name).as_posix(), name == "__init__.py")
    return files


def _read_own_source(path: Path, relative: str, budget: _Budget, installed: bool = False) -> str:
    """The text of one of the user's modules carried beside the tasks
    module (or, `installed`, of a package of the environment), decoded as
    Python decodes a source file: read through a descriptor opened without
    following a link (nor waiting on a pipe), from a regular file of the
    user's own (or, installed, the system's) that others may not write
    (its code runs with the pool's grants)."""
    import importlib.util

    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise BuildFailed(f"cannot open {relative} (a symbolic link?): {e.strerror or e}; the modules carried "
                          "beside the tasks module are read only from regular files") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BuildFailed(f"{relative} is no regular file: the modules carried beside the tasks module are "
                              "read only from regular files")
        if hasattr(os, "getuid") and (info.st_uid not in ({os.getuid(), 0} if installed else {os.getuid()})
                                      or info.st_mode & 0o002):
            whose = "yours or the system's" if installed else "yours"
            raise BuildFailed(f"{relative} is not {whose}, or anyone may write it: a module carried into the "
                              f"component runs with the pool's grants, so it is read only from a file of {whose} "
                              "that others cannot change")
        data = file.read(max(budget.bytes, 0) + 1)
    budget.spend(0, len(data))
    try:
        return importlib.util.decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as e:
        raise BuildFailed(f"cannot read {relative} as Python source: {e}") from None


def _preload(source: bytes, carried: Carried) -> list[str]:
    """What the runner component imports at build: the modules the module
    and the modules carried beside it import, but those carried."""
    names = set(_imports_inside(source))
    for module in carried.values():
        names.update(_imports_inside(module["source"].encode("utf-8", "surrogatepass")))
    return sorted(name for name in names if name.split(".")[0] not in {m.split(".")[0] for m in carried})


def _runner_key(preload: list[str], tool: str, wit: str) -> str:
    """The key of a runner component: the modules it imports at build,
    the runner, the WIT world and componentize-py's version."""
    return _digest(b"wasmpool python runner v1", "\n".join(preload).encode(), _RUNNER.read_bytes(),
                   _IN_TASK.read_bytes(), wit.encode(), tool.encode())


def _trusted(path: Path) -> bool:
    """Whether a cached file is the user's own and only the user may write it."""
    if not hasattr(os, "getuid"):
        return path.is_file()  # Windows: the folder is under the user's profile
    try:
        info = path.lstat()
    except OSError:
        return False  # gone (another process evicted it): built again
    return info.st_uid == os.getuid() and not info.st_mode & 0o022 and path.is_file() and not path.is_symlink()


def _private_dir(path: Path) -> Path | None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    if hasattr(os, "getuid"):
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return None
    return path


def _plan(path: str | os.PathLike[str], wit: str, cache_dir: str | os.PathLike[str] | None | bool,
          packages: Sequence[str] = ()) -> tuple[Path, bytes, str, Carried, Path | None, Path | None, str]:
    """The module's path, source and name, the modules carried beside it,
    where its component is cached and the cache folder (None without a
    cache), and componentize-py's version; `BuildFailed` for what stops a
    build before it starts."""
    source_path = Path(path)
    try:
        source = source_path.read_bytes()
    except OSError as e:
        where = "" if source_path.is_absolute() else (
            f" ({source_path.absolute()}: a relative path is read from the working folder, {Path.cwd()})")
        raise BuildFailed(f"cannot read {source_path}{where}: {e.strerror or e}") from None
    module_name = source_path.stem
    if (not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name) or module_name.startswith("wasmpool_")
            or module_name == "wasmpool"):
        raise BuildFailed(f"{source_path.name}: the file name must be a Python module name (letters, digits, _), "
                          "not wasmpool nor wasmpool_*")
    _refuse_native_imports(source_path, source)
    carried = _carried_modules(source_path, source, packages)
    cache = None
    if cache_dir is True:
        cache = default_cache_dir()
    elif cache_dir:
        cache = Path(cache_dir)
    if cache is not None:
        cache = _private_dir(cache)
    tool = componentize_py_version()
    if tool is None:
        # A build of this very source, made by any componentize-py this
        # cache has seen, runs without one (a student's other venv, the
        # `wasmpool` command under another Python).
        for seen in _tools_seen(cache) if cache is not None else []:
            candidate = _cache_entry(cache, module_name, _key(source, module_name, seen, wit, carried))
            if candidate is not None and _trusted(candidate):
                return source_path, source, module_name, carried, candidate, cache, seen
        python = sys.executable or "python3"
        raise BuildFailed(f"building tasks written in Python needs componentize-py, which {python} does not have: "
                          f"{python} -m pip install \"wasmpool[python-tasks]\" (or componentize-py itself)")
    cached = _cache_entry(cache, module_name, _key(source, module_name, tool, wit, carried))
    return source_path, source, module_name, carried, cached, cache, tool


def _cache_entry(cache: Path | None, module_name: str, key: str) -> Path | None:
    """Where the component of `module_name` with `key` is kept in `cache`."""
    return cache / f"{module_name}-{key[:32]}.wasm" if cache is not None else None


# The file of a cache folder that lists the componentize-py versions its
# builds were made with, one per line (see _tools_seen).
_TOOLS_FILE = "componentize-py-versions"


def _tools_seen(cache: Path | None) -> list[str]:
    """The componentize-py versions the builds in `cache` were made with
    (at most 16, each a short version string), if the list is the user's
    own file."""
    if cache is None:
        return []
    path = cache / _TOOLS_FILE
    try:
        if not _trusted(path):
            return []
        text = _read_regular_file(path, 4096, "the list of componentize-py versions").decode("ascii", "replace")
    except (OSError, BuildFailed):
        return []
    return [line for line in text.splitlines() if re.fullmatch(r"[0-9A-Za-z.+!_-]{1,40}", line)][-16:]


def _remember_tool(cache: Path, tool: str) -> None:
    """Adds `tool` to the versions `cache`'s builds were made with."""
    seen = _tools_seen(cache)
    if tool not in seen:
        with contextlib.suppress(OSError):
            _replace(cache / _TOOLS_FILE, "\n".join([*seen, tool][-16:]).encode() + b"\n")


# How many built components the cache keeps (about 20 MB each): the least
# recently used go first. Each edit of a module is a new build.
MAX_CACHED_BUILDS = 16
# How many runner components (one per set of imports, each reused by every
# edit of a module) it keeps beside them, also least recently used first.
MAX_CACHED_RUNNERS = 6


def _evict(folder: Path, keep: Path) -> None:
    """Removes the least recently used builds in `folder` (regular files
    named *.wasm; links are not followed): module components past
    MAX_CACHED_BUILDS, runner components (runner-*.wasm) past
    MAX_CACHED_RUNNERS, counted apart so that builds of many modules do not
    push out the runners their edits reuse."""
    groups: dict[bool, list[tuple[float, Path]]] = {True: [], False: []}
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".wasm") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    groups[entry.name.startswith("runner-")].append(
                        (entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
    for runners, builds in groups.items():
        builds.sort(reverse=True)
        for _, old in builds[MAX_CACHED_RUNNERS if runners else MAX_CACHED_BUILDS:]:
            if old != keep:
                with contextlib.suppress(OSError):
                    old.unlink()


def cache_path(path: str | os.PathLike[str], *, wit: str, cache_dir: str | os.PathLike[str] | None | bool = True,
               packages: Sequence[str] = ()) -> Path | None:
    """Where the component of the module at `path` is (or would be) cached."""
    return _plan(path, wit, cache_dir, packages)[4]


# Native extensions with no WebAssembly (WASI) build on PyPI.
_NATIVE = ("numpy", "scipy", "pandas")


def _native_hint(name: str) -> str:
    return (f"{name} is a native extension: no build of it for WebAssembly (WASI) is available "
            "from the package registries, so tasks written in Python cannot import it")


def _refuse_native_imports(source_path: Path, source: bytes) -> None:
    """Refuses at once a module whose top level imports numpy and the like
    unconditionally (an import inside `try` may have a fallback). A module
    this Python cannot parse (newer syntax) is left to the build."""
    import ast

    try:
        tree = ast.parse(source, filename=source_path.name)
    except (SyntaxError, ValueError):
        return
    if _makes_own_pool(tree):
        # A script that is its own tasks module imports for its host side
        # too: inside the sandbox such an import is skipped (the runner's
        # `_run_module`), and a task using it says why.
        return
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [(node.module, node.lineno)]
        for name, line in names:
            top = name.split(".")[0]
            if top in _NATIVE:
                raise BuildFailed(f"cannot build {source_path.name} into a task component: "
                                  f"line {line} imports {top}\n{_native_hint(top)}")


def _makes_own_pool(tree: Any) -> bool:
    """Whether the module makes a pool of its own (`from wasmpool import
    Pool`, `wasmpool.Pool(...)`): a script that is its own tasks module."""
    import ast

    makers = {"Pool", "Executor"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "wasmpool":
            if any(alias.name in makers for alias in node.names):
                return True
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wasmpool"
              and node.attr in makers):
            return True
    return False


# `import a.b, c as d` and `from a.b import c, d`, on a line of their own
# (the fallback for a module this Python cannot parse).
_IMPORT_LINE = re.compile(r"(?:^|[;:])[ \t]*(?:import[ \t]+([\w., \t]+)|from[ \t]+([\w.]+)[ \t]+import[ \t]+\(?([\w, \t]*))",
                          re.MULTILINE)


def _imports_inside(source: bytes) -> list[str]:
    """The absolute imports anywhere in the module (its top level and its
    functions' bodies), for the runner component to import at build (see
    the runner's `preload`): each `import a.b`'s `a.b`, each `from a import
    b`'s `a` and `a.b` (b may be a module). Read from the syntax tree, or,
    if this Python cannot parse the module (syntax newer than its own),
    from the lines that look like imports."""
    import ast

    names: set[str] = set()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        text = source.decode("utf-8", errors="replace")
        for imported, module, members in _IMPORT_LINE.findall(text):
            if imported:
                names.update(part.split()[0] for part in imported.split(",") if part.split())
            else:
                names.add(module)
                names.update(f"{module}.{part.split()[0]}" for part in members.split(",") if part.split())
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return sorted(name for name in names
                  if name.split(".")[0] not in _NATIVE and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", name))


def build(path: str | os.PathLike[str], *, wit: str, out: str | os.PathLike[str] | None = None,
          cache_dir: str | os.PathLike[str] | None | bool = True, packages: Sequence[str] = ()) -> Path:
    """Builds the Python module at `path` into a task component; returns its path.

    `wit`: the text of the `wasmpool:task` world (wit/wasmpool-task.wit).
    `out`: where to write the component (default: the cache).
    `cache_dir`: True for the default cache, a folder, or False for none
    (then `out` is required).
    `packages`: pure-Python packages of this Python's environment to carry
    for the module to import (`_environment_package`).
    Raises `BuildFailed` with the reason (componentize-py missing, a syntax
    error with its line, a native extension imported).

    The module's code does not run here: the component carries its source,
    which runs when an instance starts, inside the pool's sandbox (see the
    module's doc). The runner component it needs is built, once for the
    modules the source imports, by componentize-py, which runs only the
    standard library's code then (and wasmpool's runner), inside its
    WebAssembly sandbox, seeing a private build folder.
    """
    source_path, source, module_name, carried, cached, cache, tool = _plan(path, wit, cache_dir, packages)
    if cached is not None and _trusted(cached):
        with contextlib.suppress(OSError):
            os.utime(cached)  # used now: the last to go (see _evict)
        if out is None:
            return cached
        data = _read_cached(cached, MAX_COMPONENT, "the cached component")
        if data is not None:
            _replace(Path(out), data, mode=0o644)
            return Path(out)
    if out is None and cached is None:
        raise BuildFailed("no private cache folder is known (XDG_CACHE_HOME, LOCALAPPDATA, HOME): give `out`")
    text = _check_source(source_path, source)
    runner = _runner_component(_preload(source, carried), wit, tool, cache, source_path.name)
    component = runner + _start_section(module_name, text, carried)
    destination = Path(out) if out is not None else cached
    assert destination is not None  # `out`, or the cache (checked above)
    if cached is not None:
        _replace(cached, component)
        _remember_tool(cached.parent, tool)
        _evict(cached.parent, keep=cached)
    if out is not None:
        _replace(Path(out), component, mode=0o644)
    return destination


# The component's custom section that carries the module's source to the
# start of every instance (host/runtime/component_start.rs reads it).
START_SECTION = "wasmpool-start"
# Longest start argument the host takes, in bytes (MAX_START_ARGUMENT there).
MAX_START_ARGUMENT = 8 << 20


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _start_section(module_name: str, text: str, carried: Carried | None = None) -> bytes:
    """The custom section holding the module's name and source, and the
    modules carried beside it (JSON), as the runner's start reads it."""
    spec: dict[str, object] = {"module": module_name, "source": text}
    if carried:
        spec["modules"] = carried
    try:
        payload = json.dumps(spec, ensure_ascii=False).encode()
    except UnicodeEncodeError as e:  # a lone surrogate, from a `coding:` cookie
        raise BuildFailed(f"{module_name}.py cannot be carried as UTF-8 text: {e}") from None
    if len(payload) > MAX_START_ARGUMENT:
        raise BuildFailed(f"{module_name}.py is too long to carry: {len(payload)} bytes of source, "
                          f"over {MAX_START_ARGUMENT}")
    name = START_SECTION.encode()
    body = _leb128(len(name)) + name + payload
    return b"\0" + _leb128(len(body)) + body


def _check_source(source_path: Path, source: bytes) -> str:
    """The module's text (decoded as Python decodes a source file), checked
    for syntax errors where this Python can tell: one as new as the
    component's (3.14) or newer. An older one may not know syntax the
    component's CPython knows, so there the start reports them, with the
    line, when the pool loads the component."""
    import importlib.util

    try:
        text = importlib.util.decode_source(source)
    except (SyntaxError, UnicodeDecodeError, LookupError) as e:
        raise BuildFailed(f"cannot read {source_path.name} as Python source: {e}") from None
    if sys.version_info >= (3, 14):
        try:
            compile(text, source_path.name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as e:
            detail = "".join(__import__("traceback").format_exception_only(type(e), e)).strip()
            raise BuildFailed(f"cannot build {source_path.name} into a task component:\n{detail}") from None
    return text


def _runner_component(preload: list[str], wit: str, tool: str, cache: Path | None, for_name: str) -> bytes:
    """The runner component that imports `preload` at build: from the cache
    (``runner-<key>.wasm``) if there, else built by componentize-py (and
    cached)."""
    cached = cache / f"runner-{_runner_key(preload, tool, wit)[:32]}.wasm" if cache is not None else None
    if cached is not None and _trusted(cached):
        with contextlib.suppress(OSError):
            os.utime(cached)
        data = _read_cached(cached, MAX_COMPONENT, "the cached runner component")
        if data is not None:
            return data
    # A first build and the compile after it take seconds with nothing else
    # to show: say so once, rather than seem to hang.
    print(f"wasmpool: building the interpreter for {for_name}'s imports into a task component; it is cached "
          "once built (and compiled once more by the first pool); edits that import nothing new reuse it",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="wasmpool-build-") as tmp:
        runner = _componentize(preload, wit, Path(tmp), for_name)
    if cached is not None:
        _replace(cached, runner)
        _evict(cached.parent, keep=cached)
    return runner


# The build's driver: componentize-py's library call, given exactly one
# folder of Python code. (Its command line would add the host's
# site-packages, which it mounts read-write for the code it imports.)
_DRIVER = r"""
import sys
import componentize_py

wit, world, code, app, output = sys.argv[1:6]
arguments = dict(
    wit_path=[wit], worlds=[world], features=[], all_features=False, world_module=None,
    python_path=[code], module_worlds=[], app_name=app, output_path=output, stub_wasi=False,
    import_interface_names=[], export_interface_names=[], full_names=False,
)
if "intersect_world" in (getattr(componentize_py.componentize, "__text_signature__", None) or ""):
    arguments["intersect_world"] = None
try:
    componentize_py.componentize(**arguments)
except AssertionError as e:  # componentize-py's way of failing: the reason
    sys.stderr.write(str(e))
    sys.exit(1)
"""

# Largest component a build may produce (tasks.py gives about 20 MB).
MAX_COMPONENT = 256 << 20


def _componentize(preload: list[str], wit: str, private: Path, for_name: str) -> bytes:
    """Runs componentize-py on the runner (importing `preload`) inside
    `private` (a fresh folder of this build's own) and returns the
    component's bytes.

    - `private/code/`: the runner, the module `wasmpool` tasks see, and the
      app: the only folder of Python code (componentize-py mounts it
      read-write; where the system honours it, it is read-only at the
      build, and it is thrown away);
    - `private/tmp/`: componentize-py's own temporary folders (the
      standard library it mounts, generated bindings), also thrown away;
    - `private/wit/` and `private/out/`: the world and the component,
      which no code of the build can reach."""
    code, scratch, wit_dir, output = (private / name for name in ("code", "tmp", "wit", "out"))
    for folder in (code, scratch, wit_dir, output):
        folder.mkdir(mode=0o700)
    shutil.copyfile(_RUNNER, code / "wasmpool_runner.py")
    shutil.copyfile(_IN_TASK, code / "wasmpool.py")
    (code / "wasmpool_app.py").write_text(
        "import wasmpool_runner\n"
        f"wasmpool_runner.preload({preload!r})\n"
        "Tasks = wasmpool_runner.make_tasks()\n"
    )
    (wit_dir / "wasmpool-task.wit").write_text(wit)
    for file in code.iterdir():
        file.chmod(0o444)
    code.chmod(0o555)
    target = output / "tasks.wasm"
    command = [sys.executable, "-c", _DRIVER, str(wit_dir), _WORLD, str(code), "wasmpool_app", str(target)]
    environment = dict(os.environ, TMPDIR=str(scratch), TEMP=str(scratch), TMP=str(scratch))
    try:
        done = subprocess.run(command, cwd=scratch, env=environment, capture_output=True, text=True,
                              errors="replace", timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"building the interpreter for {for_name} did not finish within {BUILD_TIMEOUT} s") from None
    finally:
        code.chmod(0o700)  # so that the folder can be removed
    if done.returncode != 0:
        raise BuildFailed(_explain(for_name, done.stdout + done.stderr, code))
    return _read_regular_file(target, MAX_COMPONENT, f"the component built for {for_name}")


def _read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, read through a descriptor opened without
    following a link and checked to be a regular file of the user's own
    with no other name, at most `limit` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BuildFailed(f"componentize-py reported success but wrote no {what}") from None
    except OSError as e:
        raise BuildFailed(f"cannot open {what} (a link?): {e.strerror or e}") from None
    # Checked before the descriptor becomes a file object, which refuses
    # a folder with its own error.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or (
            hasattr(os, "getuid") and info.st_uid != os.getuid()):
        os.close(fd)
        raise BuildFailed(f"{what} is not a regular file of this user's own with one name")
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise BuildFailed(f"{what} is over {limit >> 20} MiB")
    return data


def _read_cached(path: Path, limit: int, what: str) -> bytes | None:
    """A cache entry's bytes, read as `_read_regular_file` reads them, or
    None if it is gone: another process (a second pool, a parallel test
    run) may evict it between the look-up and the read. It is then built
    again."""
    try:
        return _read_regular_file(path, limit, what)
    except BuildFailed:
        if not os.path.lexists(path):
            return None
        raise


def _replace(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Writes `data` as `path` (with `mode`): a new file of this user's own
    beside it, renamed over the name, so that nothing is written through a
    link or a second name found there (a task allowed to write the folder
    of `tasks.wasm` could have planted `tasks.wasm -> ~/.bashrc`)."""
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        if mode != 0o600 and hasattr(os, "fchmod"):
            os.chmod(staged, mode)
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise


def _explain(for_name: str, output: str, work: Path) -> str:
    """The reason a build failed, from componentize-py's output."""
    output = output.replace(str(work) + os.sep, "").replace(str(work), ".")
    # The build mounts `work` as /0 inside the sandbox.
    output = output.replace('File "/0/', 'File "')
    # Only the Python traceback, if there is one: not the Rust backtrace after it.
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
    end = next((i for i, line in enumerate(lines) if line.startswith("Stack backtrace")), len(lines))
    tail = "\n".join(lines[start:end] if start is not None else lines[:end]).strip()
    # The last one: an import that failed while handling another's failure
    # (a fallback) is the one that stopped the module.
    missing = re.findall(r"No module named '([^']+)'", tail)
    hint = ""
    if missing:
        name = missing[-1].split(".")[0]
        if name in _NATIVE:
            hint = "\n" + _native_hint(name)
        else:
            hint = f"\nthe component contains only the standard library and {for_name}: {name} is neither"
    text = tail[-_MAX_OUTPUT:]
    return f"cannot build {for_name} into a task component:\n{text}{hint}"


def main(argv: list[str] | None = None) -> int:
    """The script: builds one module and prints the component's path."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="componentize.py",
        description="Build a Python module of tasks into a wasmpool task component (with componentize-py).",
    )
    parser.add_argument("source", help="the module, e.g. tasks.py")
    parser.add_argument("--wit", required=True, help="the wasmpool:task world (wit/wasmpool-task.wit)")
    parser.add_argument("-o", "--out", help="where to write the component (default: the cache only)")
    parser.add_argument("--cache-dir", help="the cache folder (default: the user's cache)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--package", action="append", default=[], metavar="NAME",
                        help="a pure-Python package of this Python's environment to carry (repeatable)")
    args = parser.parse_args(argv)
    cache: str | bool = False if args.no_cache else (args.cache_dir or True)
    try:
        wit = Path(args.wit).read_text()
        built = build(args.source, wit=wit, out=args.out, cache_dir=cache, packages=args.package)
    except (BuildFailed, OSError) as e:
        print(e, file=sys.stderr)
        return 2
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
