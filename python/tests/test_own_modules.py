"""A tasks.py that imports the student's own modules beside it: a module
file and a package folder, carried into the component by the build (the
build runs none of their code), found by import inside the sandbox, on
both worker kinds; an edit of one rebuilds; what cannot be carried is
refused at build, naming it."""
import textwrap

import pytest

from conftest import python_tasks_available
from wasmpool.errors import BuildError, ModuleLoadError, TaskError

pytestmark = python_tasks_available()


def _project(folder):
    (folder / "tasks.py").write_text(textwrap.dedent('''\
        import helpers
        from geometry import shapes
        from geometry.units import to_cm


        def mean_of(values):
            """The mean, by helpers.py (which uses the standard `statistics`)."""
            return helpers.mean(values)


        def square_area_cm(side_m):
            return to_cm(to_cm(shapes.square_area(side_m)))


        def broken():
            return helpers.fails()
    '''))
    (folder / "helpers.py").write_text(textwrap.dedent('''\
        import statistics

        SCALE = 1


        def mean(values):
            return SCALE * statistics.fmean(values)


        def fails():
            raise ValueError("raised in helpers")
    '''))
    package = folder / "geometry"
    package.mkdir()
    (package / "__init__.py").write_text("from .shapes import square_area\n")
    (package / "shapes.py").write_text("def square_area(side):\n    return side * side\n")
    (package / "units.py").write_text("from . import shapes  # a relative import inside the package\n\n"
                                      "def to_cm(metres):\n    return metres * 100\n")
    return folder / "tasks.py"


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_tasks_import_the_students_modules_beside_them(tmp_path, processes):
    from wasmpool import Pool

    tasks = _project(tmp_path)
    # As in Python, the package folder comes before a module of its name.
    (tmp_path / "geometry.py").write_text("raise ImportError('the module, not the package')\n")
    with Pool(tasks, workers=2, processes=processes) as pool:
        assert [t.name for t in pool.tasks()] == ["mean_of", "square_area_cm", "broken"], "imports are no tasks"
        assert pool.map("mean_of", [[1, 2, 3], [4, 5]]) == [2.0, 4.5]
        assert pool.call("square_area_cm", 2) == 40000
        with pytest.raises(ValueError) as caught:
            pool.call("broken")
        assert isinstance(caught.value, TaskError)
        assert 'helpers.py", line 11' in str(caught.value), "the traceback shows the module's own lines"


def test_an_edit_of_an_own_module_rebuilds(tmp_path):
    from wasmpool import Pool, _build

    tasks = _project(tmp_path)
    first = _build.build(tasks)
    helpers = tmp_path / "helpers.py"
    helpers.write_text(helpers.read_text().replace("SCALE = 1", "SCALE = 10"))
    assert _build.cache_path(tasks) != first
    with Pool(tasks, workers=1) as pool:
        assert pool.call("mean_of", [1, 2, 3]) == 20.0


def test_what_cannot_be_carried_is_refused_naming_it(tmp_path):
    from wasmpool import _build

    tasks = _project(tmp_path)
    (tmp_path / "helpers.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    with pytest.raises(BuildError, match=r"helpers \(helpers\.cpython-311-x86_64-linux-gnu\.so, beside the "
                                         r"module\) is a native extension"):
        _build.build(tasks)
    (tmp_path / "helpers.cpython-311-x86_64-linux-gnu.so").unlink()
    (tmp_path / "geometry" / "_fast.pyd").write_bytes(b"MZ")
    with pytest.raises(BuildError, match=r"the package geometry holds a native extension \(geometry/_fast\.pyd\)"):
        _build.build(tasks)
    (tmp_path / "geometry" / "_fast.pyd").unlink()
    (tmp_path / "helpers.py").rename(tmp_path / "real_helpers.py")
    (tmp_path / "helpers.py").symlink_to(tmp_path / "real_helpers.py")
    with pytest.raises(BuildError, match="cannot open helpers.py"):
        _build.build(tasks)
    (tmp_path / "helpers.py").unlink()
    (tmp_path / "real_helpers.py").rename(tmp_path / "helpers.py")
    (tmp_path / "helpers.py").chmod(0o666)
    with pytest.raises(BuildError, match="helpers.py is not yours, or anyone may write it"):
        _build.build(tasks)
    (tmp_path / "helpers.py").chmod(0o644)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "__init__.py").write_text("")
    (tmp_path / "geometry" / "linked").symlink_to(elsewhere)
    with pytest.raises(BuildError, match=r"geometry/linked/ is a symbolic link"):
        _build.build(tasks)
    (tmp_path / "geometry" / "linked").unlink()


def test_a_folder_too_large_to_carry_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from wasmpool import _build
    from wasmpool._build import componentize

    tasks = _project(tmp_path)
    monkeypatch.setattr(componentize, "MAX_CARRIED_FILES", 3)
    with pytest.raises(BuildError, match="imports more of its own modules and named packages than a component carries"):
        _build.build(tasks)
    monkeypatch.setattr(componentize, "MAX_CARRIED_FILES", 1000)
    monkeypatch.setattr(componentize, "MAX_CARRIED_BYTES", 100)
    with pytest.raises(BuildError, match="over 1000 files or 0 MiB"):
        _build.build(tasks)


def test_a_module_neither_beside_nor_standard_is_named_inside(tmp_path):
    from wasmpool import Pool

    (tmp_path / "tasks.py").write_text("import helpers_missing\n\ndef f():\n    return 1\n")
    with pytest.raises(ModuleLoadError, match=r"helpers_missing is none of these"):
        Pool(tmp_path / "tasks.py", workers=1)


NEWER = textwrap.dedent('''\
    from packaging.version import Version


    def newer(a, b):
        """Whether version a is newer than b, by the installed `packaging`."""
        return Version(a) > Version(b)
''')


def test_an_installed_single_file_module_is_carried_when_named(tmp_path, monkeypatch):
    from wasmpool import Pool

    site = tmp_path / "site"
    site.mkdir()
    (site / "onefile.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(site))
    (tmp_path / "tasks.py").write_text("import onefile\n\ndef f(x):\n    return onefile.twice(x)\n")
    with Pool(tmp_path / "tasks.py", workers=1, packages=["onefile", "onefile"]) as pool:
        assert pool.call("f", 21) == 42


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_an_installed_pure_python_package_is_carried_when_named(tmp_path, processes):
    from wasmpool import Pool

    (tmp_path / "tasks.py").write_text(NEWER)
    with pytest.raises(ModuleLoadError, match=r"packaging is none of these .*packages=\[\"packaging\"\]"):
        Pool(tmp_path / "tasks.py", workers=1, processes=processes)
    with Pool(tmp_path / "tasks.py", workers=1, processes=processes, packages=["packaging"]) as pool:
        assert pool.map("newer", [("1.10", "1.9"), ("2.0rc1", "2.0")]) == [True, False]


def test_a_package_that_cannot_be_carried_is_refused_naming_it(tmp_path, monkeypatch):
    from wasmpool import Pool, _build

    site = tmp_path / "site"
    native = site / "nativepkg"
    native.mkdir(parents=True)
    (native / "__init__.py").write_text("")
    (native / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (site / "namespacepkg").mkdir()
    (site / "namespacepkg" / "mod.py").write_text("")
    shared = site / "sharedpkg"
    shared.mkdir()
    (shared / "__init__.py").write_text("")
    (shared / "__init__.py").chmod(0o666)
    monkeypatch.syspath_prepend(str(site))
    tasks = tmp_path / "tasks.py"
    tasks.write_text("def f():\n    return 1\n")
    refusals = {
        "nativepkg": r"the package nativepkg holds a native extension \(nativepkg/_speedups",
        "namespacepkg": r"namespacepkg is a namespace package",
        "sharedpkg": r"sharedpkg/__init__.py is not yours or the system's, or anyone may write it",
        "no_such_package_here": r"no_such_package_here is not installed in .*'s environment",
        "json": r"json is part of Python",
        "not-a-name": r"'not-a-name' is not the name of a top-level package",
    }
    import zipfile

    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:
        archive.writestr("zippedpkg/__init__.py", "")
    monkeypatch.syspath_prepend(str(tmp_path / "zipped.zip"))
    refusals["zippedpkg"] = r"zippedpkg is not installed as Python source files"
    for name, refusal in refusals.items():
        with pytest.raises(BuildError, match=refusal):
            _build.build(tasks, packages=[name])
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "tasks.py").write_text("import helpers\n\ndef f():\n    return 1\n")
    (site / "helpers.py").write_text("")
    with pytest.raises(BuildError, match="packages names helpers, which is also a module of yours beside tasks.py"):
        _build.build(tasks, packages=["helpers"])
    with pytest.raises(TypeError, match=r"packages takes a list of names, not one: packages=\['packaging'\]"):
        Pool(tasks, packages="packaging")
