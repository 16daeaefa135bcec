"""Tasks written in Python: building a module into a task component."""
import shutil
import time

import pytest

from conftest import python_tasks_available
from wasmpool import _build
from wasmpool.errors import BuildError

pytestmark = python_tasks_available()

HERE = __import__("pathlib").Path(__file__).parent


def test_a_module_builds_once_then_comes_from_the_cache(tmp_path):
    source = tmp_path / "tasks.py"
    shutil.copyfile(HERE / "python_tasks" / "tasks.py", source)
    cache = tmp_path / "cache"
    first = _build.build(source, cache_dir=cache)
    assert first.read_bytes()[:8] == b"\0asm\x0d\0\x01\0"  # a component
    started = time.monotonic()
    assert _build.build(source, cache_dir=cache) == first
    assert time.monotonic() - started < 2, "the second build came from the cache"
    source.write_text(source.read_text() + "\ndef twice(x):\n    return 2 * x\n")
    assert _build.build(source, cache_dir=cache) != first


def test_a_syntax_error_names_its_line(tmp_path):
    source = tmp_path / "broken.py"
    source.write_text("def f(x):\n    return x +\n")
    with pytest.raises(BuildError) as caught:
        _build.build(source, cache_dir=tmp_path)
    assert "SyntaxError" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_numpy_is_refused_with_the_reason(tmp_path):
    source = tmp_path / "uses_numpy.py"
    source.write_text("import numpy\n\ndef f(x):\n    return numpy.sqrt(x)\n")
    with pytest.raises(BuildError, match="no build of it for WebAssembly"):
        _build.build(source, cache_dir=tmp_path)


def test_a_file_name_that_is_no_module_name_is_refused(tmp_path):
    source = tmp_path / "my-tasks.py"
    source.write_text("def f(x):\n    return x\n")
    with pytest.raises(BuildError, match="module name"):
        _build.build(source, cache_dir=tmp_path)


def test_a_pool_runs_tasks_written_in_python_alike_for_any_worker_count():
    from wasmpool import Pool
    from wasmpool.errors import NotGranted, TaskPanicked

    source = HERE / "python_tasks" / "tasks.py"
    with Pool(source, workers=2, seed=7) as pool:
        assert [t.name for t in pool.tasks()] == ["sqrt", "pi_hits", "add", "boom", "now", "hog", "chatty"]
        assert pool.map("sqrt", [0, 4, 9]) == [0.0, 2.0, 3.0]
        assert pool.map("add", [(1, 2), (3, 4)]) == [3, 7]
        two = pool.map("pi_hits", [1000] * 6)
        with pytest.raises(TaskPanicked) as caught:
            pool.call("boom", 0)
        assert caught.value.location == "tasks.py:20"
        assert "ZeroDivisionError" in str(caught.value)
        with pytest.raises(NotGranted) as refused:
            pool.call("now")
        assert refused.value.capability == "allow_wall_clock"
        assert "`time.time()` in Python" in str(refused.value)
        assert "Pool(..., allow_wall_clock=True)" in str(refused.value)
    with Pool(source, workers=1, seed=7) as pool:
        assert pool.map("pi_hits", [1000] * 6) == two
    with Pool(source, workers=1, seed=8) as pool:
        assert pool.map("pi_hits", [1000] * 6) != two
    with Pool(source, workers=2, seed=7, processes=True) as pool:
        assert pool.worker_kind == "processes"
        assert all(pool.worker_pids())
        assert pool.map("pi_hits", [1000] * 6) == two


def test_a_granted_clock_can_be_read():
    from wasmpool import Pool

    with Pool(HERE / "python_tasks" / "tasks.py", workers=1, allow_wall_clock=True) as pool:
        assert abs(pool.call("now") - time.time()) < 60


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_the_sandbox_limits_hold_for_tasks_written_in_python(processes, capfd):
    from wasmpool import Pool
    from wasmpool.errors import LimitExceeded, TaskPanicked

    source = HERE / "python_tasks" / "tasks.py"
    with Pool(source, workers=1, deadline=2.0, max_memory=96 << 20, max_output=4096, processes=processes) as pool:
        with pytest.raises(LimitExceeded) as caught:
            pool.call("pi_hits", 10**10)
        assert caught.value.limit == "deadline"
        assert pool.call("hog", 8) == 8 << 20
        # CPython turns a refused memory.grow into MemoryError.
        with pytest.raises((LimitExceeded, TaskPanicked)) as caught:
            pool.call("hog", 200)
        assert "memory" in str(caught.value).lower()
        assert pool.call("chatty", 3) == 3
        with pytest.raises(LimitExceeded) as caught:
            pool.call("chatty", 10_000)
        assert caught.value.limit == "max_output"
        assert pool.call("sqrt", 16) == 4.0, "the pool serves on after each limit"
    assert "line 2" in capfd.readouterr().err
