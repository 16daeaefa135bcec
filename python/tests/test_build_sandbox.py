"""A module's top-level code is as untrusted as its tasks. The build never
runs it (the component carries the source; the runner component is built
from wasmpool's runner and the standard modules the source imports): it
runs when the pool loads, inside the pool's sandbox, with the pool's
grants (none here). tests/hostile/escape_at_build.py tries to write, link
and climb out of every folder it can see; none of its marks may appear on
the host, and every attempt is refused."""
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import python_tasks_available

pytestmark = python_tasks_available()

HOSTILE = Path(__file__).parent / "hostile" / "escape_at_build.py"
MARK = "wasmpool-hostile-mark"


def _site_folders():
    """Every site-packages folder a build could have been shown: this
    Python's (a venv's), its user site, and those of the `python3` on PATH
    (which componentize-py's command line asks for its site-packages)."""
    folders = set(site.getsitepackages()) | {site.getusersitepackages()}
    python3 = shutil.which("python3")
    if python3:
        listed = subprocess.run(
            [python3, "-c", "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"],
            capture_output=True, text=True, check=False)
        folders |= set(listed.stdout.split())
    return sorted(Path(f) for f in folders)


def _marks_in(folder: Path, recursive: bool):
    """Paths under `folder` whose name carries the mark (links included,
    never followed)."""
    if not folder.is_dir():
        return []
    if not recursive:
        return [p for p in folder.iterdir() if MARK in p.name]
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        found += [Path(top, name) for name in dirs + files if MARK in name]
    return found


def test_the_top_level_code_of_a_module_leaves_nothing_on_the_host(tmp_path, monkeypatch):
    from wasmpool import Pool, _build

    module_folder = tmp_path / "project"
    module_folder.mkdir()
    source = module_folder / "escape_at_build.py"
    shutil.copyfile(HOSTILE, source)
    cache = tmp_path / "cache"
    # As from an activated venv: componentize-py's command line adds
    # $VIRTUAL_ENV's site-packages to what the module may see.
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.chdir(module_folder)
    watched = _site_folders() + [Path(tempfile.gettempdir()), Path("/"), Path.home()]
    before = {folder: _marks_in(folder, recursive=False) for folder in watched}

    built = _build.build(source, cache_dir=cache)

    left = [p for folder in watched for p in _marks_in(folder, recursive=False) if p not in before[folder]]
    left += _marks_in(tmp_path, recursive=True)
    with Pool(built, workers=1) as pool:
        attempts = pool.call("attempts")
        assert pool.call("ok") == 42
    went_through = [a for a in attempts if a.startswith("ok:")]
    assert not left, f"the build left marks on the host: {left}\nattempts that went through: {went_through}"
    # The cache holds the component, the interpreter it was made from, the
    # list of componentize-py versions that made them, and nothing the
    # module made.
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 3, names
    assert built.name in names and any(n.startswith("runner-") for n in names), names
    assert _build.componentize._TOOLS_FILE in names, names
    assert not os.path.lexists("/" + MARK)
    # The module did try, and was refused (the test is not vacuous), every time.
    assert any(a.startswith("refused: write") for a in attempts), attempts
    assert not went_through, f"attempts that went through the sandbox: {went_through}"
