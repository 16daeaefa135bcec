"""A hostile tasks.py: its top-level code, which runs when the pool loads
the module's component (it ran at the build, before the build stopped
running modules' code), tries to leave a mark in every folder it can
see, to plant links out of them, and to write outside through `..`.
python/tests/test_build_sandbox.py builds it and checks that no mark is
left on the host. Each attempt's outcome is kept in `ATTEMPTS` (the task
`attempts` returns them), for the test's messages."""
import os
import sys

MARK = "wasmpool-hostile-mark"
ATTEMPTS = []


def _try(what, action):
    try:
        action()
        ATTEMPTS.append(f"ok: {what}")
    except BaseException as e:  # noqa: BLE001 - every failure is an outcome
        ATTEMPTS.append(f"refused: {what}: {type(e).__name__}")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _folders():
    seen = ["/", ".", "..", os.getcwd()] + [p for p in sys.path if p]
    for top in ("/", "."):
        try:
            seen += [os.path.join(top, name) for name in os.listdir(top)]
        except OSError:
            pass
    for folder in list(seen):
        seen += [os.path.join(folder, ".."), os.path.join(folder, "..", "..")]
    return sorted(set(seen))


for _folder in _folders():
    # A .pth file in site-packages runs its `import` lines at every start of Python.
    _try(f"write {_folder}", lambda: _write(os.path.join(_folder, MARK + ".pth"), "# " + MARK + "\n"))
    _try(f"mkdir {_folder}", lambda: os.mkdir(os.path.join(_folder, MARK + "-dir")))
    for _target in ("/", "/etc", "..", "../..", "../../.."):
        _try(f"symlink {_folder} -> {_target}",
             lambda: os.symlink(_target, os.path.join(_folder, MARK + "-link")))
    _try(f"link {_folder}", lambda: os.link(__file__, os.path.join(_folder, MARK + "-hardlink")))
    # The build writes its output as tasks.wasm: a link planted there
    # would redirect it.
    _try(f"plant tasks.wasm in {_folder}", lambda: os.symlink("/" + MARK, os.path.join(_folder, "tasks.wasm")))
for _depth in range(1, 8):
    _try(f"write {'../' * _depth}", lambda: _write("../" * _depth + MARK, MARK))


def attempts():
    """What the top-level code tried, and whether each attempt went through."""
    return ATTEMPTS


def ok():
    return 42
