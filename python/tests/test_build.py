"""Tasks written in Python: building a module into a task component."""
import contextlib
import os
import shutil
import time

import pytest

from conftest import python_tasks_available
from wasmpool import _build
from wasmpool.errors import BuildError

pytestmark = python_tasks_available()

HERE = __import__("pathlib").Path(__file__).parent
# The example's module: the tests' too, so that CI builds and compiles one.
TASKS = HERE.parents[1] / "examples" / "python" / "tasks.py"


def test_a_module_builds_once_then_comes_from_the_cache(tmp_path, capfd):
    # The default cache (CI points XDG_CACHE_HOME into target/): the other
    # tests' pools have built this very source already, or this builds it.
    source = tmp_path / "tasks.py"
    shutil.copyfile(TASKS, source)
    first = _build.build(source)
    assert first.read_bytes()[:8] == b"\0asm\x0d\0\x01\0"  # a component
    capfd.readouterr()
    assert _build.build(source) == first
    assert "wasmpool: building" not in capfd.readouterr().err, "a cached build says nothing"
    assert _build.cache_path(source) == first
    out = tmp_path / "out.wasm"
    assert _build.build(source, out=out) == out and out.read_bytes() == first.read_bytes()
    # A link planted where the component goes is replaced, not written through.
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out.unlink()
    out.symlink_to(victim)
    assert _build.build(source, out=out) == out
    assert victim.read_text() == "keep me" and not out.is_symlink()
    assert out.read_bytes() == first.read_bytes()


def _runner_of(component: "os.PathLike[str]"):
    """The runner component (in the build cache) that `component` was made
    from: the one its bytes start with."""
    folder = __import__("pathlib").Path(component).parent
    data = __import__("pathlib").Path(component).read_bytes()
    made_from = []
    for p in folder.glob("runner-*.wasm"):
        # Another pytest process may evict a runner between the listing and
        # the read (.ci/python runs two).
        with contextlib.suppress(FileNotFoundError):
            if data.startswith(p.read_bytes()):
                made_from.append(p)
    assert len(made_from) == 1, made_from
    return made_from[0]


def test_an_edit_that_imports_nothing_new_reuses_the_interpreter(tmp_path, capfd):
    # The default build cache, which the other tests share: a runner
    # component is built once per set of imports, and compiled once. The
    # compiled code goes to a folder of this test's own, so that what
    # other tests compile meanwhile (in another pytest process) cannot
    # change the listing below.
    from wasmpool import Pool
    from wasmpool._build import componentize

    source = tmp_path / "edited.py"
    # New sources every run (never a cached component): each build looks
    # its runner component up (an earlier run's may have been evicted).
    edit = f"# run {time.time_ns()}\n"
    source.write_text(edit + "def root(x):\n    return x ** 0.5\n")
    first = _build.build(source)
    runner = _runner_of(first)
    compiled = tmp_path / "compiled"
    with Pool(first, workers=1, cache_dir=compiled) as pool:
        assert pool.call("root", 16) == 4.0
    entries = sorted(p.name for p in compiled.glob("*.cwasm"))
    assert len(entries) == 1, entries
    capfd.readouterr()
    # The same imports (none): the same runner component, not built again,
    # and the module's source carried after it (custom section `wasmpool-start`).
    source.write_text(edit + "def root(x):\n    return x ** 0.5 + 1\n\ndef twice(x):\n    return 2 * x\n")
    second = _build.build(source)
    assert second != first
    assert "wasmpool: building" not in capfd.readouterr().err
    assert _runner_of(second) == runner
    assert componentize.START_SECTION.encode() in second.read_bytes()[runner.stat().st_size:]
    with Pool(second, workers=1, cache_dir=compiled) as pool:
        assert [t.name for t in pool.tasks()] == ["root", "twice"]
        assert pool.call("root", 16) == 5.0 and pool.call("twice", 21) == 42
    assert sorted(p.name for p in compiled.glob("*.cwasm")) == entries, "the edit compiled nothing"
    # Other imports (those of the example's tasks.py): another runner.
    source.write_text(edit + TASKS.read_text() + "\n\ndef thrice(x):\n    return 3 * x\n")
    third = _build.build(source)
    assert _runner_of(third) != runner
    with Pool(third, workers=1) as pool:
        assert pool.call("thrice", 5) == 15


def test_imports_are_read_from_source_this_python_cannot_parse():
    # 3.12+ syntax on an older Python: the import lines are read instead.
    from wasmpool._build import componentize

    source = (b"from statistics import (\n    mean,\n)\nimport json; import fractions\nif True: import decimal\n"
              b"import os.path as p, heapq\ntype Pair = tuple[int, int]\ndef f[T](x: T) -> T:\n    import bisect\n"
              b"    return x\n")
    assert set(componentize._imports_inside(source)) >= {
        "statistics", "json", "fractions", "decimal", "os.path", "heapq", "bisect"}


def test_the_build_cache_keeps_the_most_recently_used_builds(tmp_path, monkeypatch):
    from wasmpool._build import componentize

    folder = tmp_path / "cache"
    folder.mkdir()
    for age in range(20):
        old = folder / f"tasks-{age:02}.wasm"
        old.write_bytes(b"\0asm")
        os.utime(old, (1_000_000 - age, 1_000_000 - age))
    for age in range(10):  # runner components are counted apart, and outlive older module builds
        old = folder / f"runner-{age:02}.wasm"
        old.write_bytes(b"\0asm")
        os.utime(old, (1_000 - age, 1_000 - age))
    (folder / "notes.txt").write_text("not a build")
    keep = folder / "tasks-19.wasm"  # the oldest, but just written
    componentize._evict(folder, keep=keep)
    left = sorted(p.name for p in folder.iterdir())
    kept = [f"tasks-{age:02}.wasm" for age in range(componentize.MAX_CACHED_BUILDS)] + ["tasks-19.wasm"]
    kept += [f"runner-{age:02}.wasm" for age in range(componentize.MAX_CACHED_RUNNERS)]
    assert left == sorted(kept + ["notes.txt"])


def test_a_syntax_error_names_its_line(tmp_path):
    # This Python may be older than the component's (3.14), so the start
    # of the component reports it, when the pool loads; a newer one
    # refuses it at the build.
    import sys

    from wasmpool import Pool
    from wasmpool.errors import ModuleLoadError

    source = tmp_path / "broken.py"
    source.write_text("def f(x):\n    return x +\n")
    expected = BuildError if sys.version_info >= (3, 14) else ModuleLoadError
    with pytest.raises(expected) as caught:
        Pool(source, workers=1)
    assert "SyntaxError" in str(caught.value)
    assert "line 2" in str(caught.value)
    assert "wasmpool_runner" not in str(caught.value), "the runner's own frames are not the student's"


def test_top_level_code_runs_in_the_sandbox_when_the_pool_loads(tmp_path):
    from wasmpool import Pool
    from wasmpool.errors import ModuleLoadError

    # What the top-level code raises fails the pool, with its line and the
    # traceback through the module's own code.
    source = tmp_path / "raises.py"
    source.write_text("def helper():\n    return 1 / 0\n\nVALUE = helper()\n\ndef f():\n    return VALUE\n")
    with pytest.raises(ModuleLoadError) as caught:
        Pool(source, workers=1)
    text = str(caught.value)
    assert "ZeroDivisionError" in text and 'raises.py", line 4' in text and 'raises.py", line 2' in text
    # It runs on every new instance, under the pool's grants (none here).
    source = tmp_path / "reads.py"
    source.write_text("try:\n    open('/etc/passwd').read()\n    SEEN = 'read'\n"
                      "except OSError as e:\n    SEEN = type(e).__name__\n\ndef seen():\n    return SEEN\n")
    for processes in (False, True):
        with Pool(source, workers=2, processes=processes) as pool:
            assert pool.map("seen", [None] * 4) == ["FileNotFoundError"] * 4


def test_numpy_is_refused_with_the_reason(tmp_path):
    source = tmp_path / "uses_numpy.py"
    source.write_text("import math\nimport numpy\n\ndef f(x):\n    return numpy.sqrt(x)\n")
    with pytest.raises(BuildError, match="no build of it for WebAssembly") as caught:
        _build.build(source, cache_dir=tmp_path)
    assert "line 2 imports numpy" in str(caught.value)


def test_a_module_whose_top_level_code_never_ends_stops_at_the_load_deadline(tmp_path):
    from wasmpool import Pool
    from wasmpool.errors import ModuleLoadError

    source = tmp_path / "endless.py"
    source.write_text("while True:\n    pass\n")
    _build.build(source)  # the build runs none of the module's code
    # The code compiled first, outside the time taken: any module that
    # imports nothing compiles to the same code (its source is carried
    # apart). A folder of the test's own, where no other test's compile
    # can evict it.
    compiled = tmp_path / "compiled"
    warm = tmp_path / "warm.py"
    warm.write_text("def one():\n    return 1\n")
    with Pool(warm, workers=1, load_deadline=2, cache_dir=compiled) as pool:
        assert pool.call("one") == 1
    for processes in (False, True):
        started = time.monotonic()
        with pytest.raises(ModuleLoadError, match="did not return within 2s"):
            Pool(source, workers=1, processes=processes, load_deadline=2, cache_dir=compiled)
        assert time.monotonic() - started < 30


def test_top_level_code_longer_than_the_task_deadline_fails_the_load(tmp_path):
    # Every input may need a new instance, which runs the module's
    # top-level code: it must fit the load deadline, or the task deadline
    # when that is shorter, and the pool says so when it does not.
    from wasmpool import Pool
    from wasmpool.errors import ModuleLoadError

    source = tmp_path / "slow_start.py"
    source.write_text("TOTAL = sum(i * i for i in range(600_000))\n\ndef total():\n    return TOTAL\n")
    with pytest.raises(ModuleLoadError, match="did not return within 100ms"):
        Pool(source, workers=1, deadline=0.1)
    with Pool(source, workers=1, deadline=20) as pool:
        assert pool.map("total", [None] * 3) == [sum(i * i for i in range(600_000))] * 3


def test_another_missing_module_is_named(tmp_path):
    # Behind `try`, numpy could have had a fallback: the start finds the
    # import missing, and names it.
    from wasmpool import Pool
    from wasmpool.errors import ModuleLoadError

    source = tmp_path / "optional.py"
    source.write_text("try:\n    import numpy\nexcept ImportError:\n    import nosuchmodule\n")
    with pytest.raises(ModuleLoadError, match="nosuchmodule is none of these"):
        Pool(source, workers=1)


def test_a_relative_path_not_found_names_the_absolute_one_and_the_working_folder(tmp_path, monkeypatch):
    from wasmpool import Pool

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BuildError) as caught:
        Pool("lessons/tasks.py")
    message = str(caught.value)
    assert str(tmp_path / "lessons" / "tasks.py") in message, message
    assert f"working folder, {tmp_path}" in message, message


def test_a_cache_entry_gone_before_its_read_is_built_again_and_a_bad_one_still_refused(tmp_path):
    # Another process may evict an entry between the look-up and the read:
    # no bytes (the caller builds again), not an error. A link or a
    # folder where an entry should be is still refused.
    from wasmpool._build import componentize

    gone = tmp_path / "runner-gone.wasm"
    assert not componentize._trusted(gone)
    assert componentize._read_cached(gone, 1 << 20, "the entry") is None
    folder = tmp_path / "runner-folder.wasm"
    folder.mkdir()
    with pytest.raises(componentize.BuildFailed, match="not a regular file"):
        componentize._read_cached(folder, 1 << 20, "the entry")
    link = tmp_path / "runner-link.wasm"
    link.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(b"x")
    assert not componentize._trusted(link)
    with pytest.raises(componentize.BuildFailed, match="cannot open the entry"):
        componentize._read_cached(link, 1 << 20, "the entry")


def test_without_componentize_py_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(_build.componentize, "componentize_py_version", lambda: None)
    source = tmp_path / "tasks.py"
    source.write_text("def f(x):\n    return x\n")
    with pytest.raises(BuildError, match=r'pip install "wasmpool\[python-tasks\]"'):
        _build.build(source, cache_dir=tmp_path)


def test_a_cached_build_runs_without_componentize_py(tmp_path, monkeypatch):
    # As if an earlier build by componentize-py 9.9.9 were in the cache: a
    # Python without componentize-py (another venv, the command under
    # another interpreter) takes it; another source is refused, saying why.
    from wasmpool._build import componentize

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    source = tmp_path / "tasks.py"
    source.write_text("def f(x):\n    return x\n")
    wit = _native_wit()
    key = componentize._key(source.read_bytes(), "tasks", "9.9.9", wit, {})
    built = cache / f"tasks-{key[:32]}.wasm"
    built.write_bytes(b"\0asm component")
    built.chmod(0o600)
    componentize._remember_tool(cache, "1.0.0")
    componentize._remember_tool(cache, "9.9.9")
    componentize._remember_tool(cache, "9.9.9")
    assert (cache / componentize._TOOLS_FILE).read_text() == "1.0.0\n9.9.9\n"
    monkeypatch.setattr(componentize, "componentize_py_version", lambda: None)
    assert componentize.build(source, wit=wit, cache_dir=cache) == built
    source.write_text("def f(x):\n    return 2 * x\n")
    with pytest.raises(componentize.BuildFailed, match="needs componentize-py"):
        componentize.build(source, wit=wit, cache_dir=cache)


def _native_wit() -> str:
    from wasmpool._native import TASK_WORLD_WIT

    return TASK_WORLD_WIT


def test_a_file_name_that_is_no_module_name_is_refused(tmp_path):
    source = tmp_path / "my-tasks.py"
    source.write_text("def f(x):\n    return x\n")
    with pytest.raises(BuildError, match="module name"):
        _build.build(source, cache_dir=tmp_path)


def test_a_pool_runs_tasks_written_in_python_alike_for_any_worker_count():
    from wasmpool import Pool
    from wasmpool.errors import NotGranted, TaskPanicked

    source = TASKS
    with Pool(source, workers=2, seed=7) as pool:
        assert [t.name for t in pool.tasks()] == ["sqrt", "pi_hits", "add", "boom", "now", "hog", "chatty", "calls_so_far", "entropy", "str_hash", "digits", "read_text", "write_text", "env", "nap", "rolls", "leave", "walk", "load_table", "extend_table", "nan_bits", "echo"]
        assert pool.map("sqrt", [0, 4, 9]) == [0.0, 2.0, 3.0]
        assert pool.map("add", [(1, 2), (3, 4)]) == [3, 7]
        two = pool.map("pi_hits", [1000] * 6)
        with pytest.raises(TaskPanicked) as caught:
            pool.call("boom", 0)
        assert caught.value.location == "tasks.py:27"
        assert caught.value.exception == "ZeroDivisionError"
        assert "ZeroDivisionError" in str(caught.value)
        # The traceback shows the line, though the component holds no file.
        assert "    return 1 / x" in str(caught.value)
        with pytest.raises(NotGranted) as refused:
            pool.call("now")
        assert refused.value.capability == "allow_wall_clock"
        assert "`time.time()` in Python" in str(refused.value)
        assert "Pool(..., allow_wall_clock=True)" in str(refused.value)
        # Stopped at the refused call: nothing follows the grant. A sleep
        # reads the monotonic clock first, and the message says so.
        assert refused.value.message.endswith("allow_wall_clock=True).")
        with pytest.raises(NotGranted) as refused:
            pool.call("nap", 0.01)
        assert refused.value.capability == "allow_monotonic_clock"
        assert "`time.sleep()` in Python" in str(refused.value)
        assert refused.value.message.endswith("Pool(..., allow_monotonic_clock=True).")
    with Pool(source, workers=1, seed=7) as pool:
        assert pool.map("pi_hits", [1000] * 6) == two
    with Pool(source, workers=1, seed=8) as pool:
        assert pool.map("pi_hits", [1000] * 6) != two
    with Pool(source, workers=2, seed=7, processes=True) as pool:
        assert pool.worker_kind == "processes"
        assert all(pool.worker_pids())
        assert pool.map("pi_hits", [1000] * 6) == two


def test_os_urandom_and_string_hashes_repeat_for_any_worker_count_and_kind():
    from wasmpool import Pool

    source = TASKS
    words = ["apple", "pear", "plum", "fig"]
    seen = []
    for workers, processes in ((1, False), (2, False), (2, True)):
        with Pool(source, workers=workers, seed=11, processes=processes) as pool:
            seen.append((pool.map("entropy", [8] * 4), pool.map("str_hash", words)))
    assert seen[0] == seen[1] == seen[2]
    entropy, hashes = seen[0]
    assert len(set(entropy)) == 4, "each input draws its own stream"
    with Pool(source, workers=1, seed=12) as pool:
        assert pool.map("entropy", [8] * 4) != entropy
        assert pool.map("str_hash", words) == hashes, "the hash secret is the build's, not the seed's"


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_fresh_state_false_keeps_module_globals_and_still_seeds_each_input(processes):
    from wasmpool import Pool
    from wasmpool.errors import LimitExceeded, TaskPanicked

    source = TASKS
    with Pool(source, workers=1, seed=7) as pool:
        assert pool.map("calls_so_far", [None] * 3) == [1, 1, 1]
        fresh = pool.map("pi_hits", [1000] * 4)
    with Pool(source, workers=2, seed=7, fresh_state=False, deadline=2.0, processes=processes) as pool:
        # Which worker ran what varies: some worker ran a whole chunk of 3.
        assert max(pool.map("calls_so_far", [None] * 6, chunksize=3)) >= 3
        # `random` is seeded per input by the runner, kept instance or not.
        assert pool.map("pi_hits", [1000] * 4) == fresh
    with Pool(source, workers=1, seed=7, fresh_state=False, deadline=2.0, processes=processes) as pool:
        assert pool.map("calls_so_far", [None] * 3) == [1, 2, 3]
        # An exception leaves the instance as it was ...
        with pytest.raises(TaskPanicked):
            pool.call("boom", 0)
        assert pool.call("calls_so_far") == 4
        # ... a trap (here the deadline) replaces it.
        with pytest.raises(LimitExceeded):
            pool.call("pi_hits", 10**10)
        assert pool.call("calls_so_far") == 1


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_generator_made_at_import_draws_new_numbers_in_every_input(processes):
    # `_dice = random.Random()` at the top of tasks.py is part of the state
    # every input starts from: unless reseeded, every input would roll the
    # same dice (the pprocess user's bug).
    from wasmpool import Pool

    with Pool(TASKS, workers=2, seed=11, processes=processes) as pool:
        rolls = pool.map("rolls", [12] * 8)
        assert pool.map("rolls", [12] * 8) == rolls
    assert len({tuple(r) for r in rolls}) == 8, rolls
    with Pool(TASKS, workers=1, seed=11, fresh_state=False, processes=processes) as pool:
        with_kept = pool.map("rolls", [12] * 8)
    assert with_kept == rolls
    with Pool(TASKS, workers=1, seed=12, processes=processes) as pool:
        assert pool.map("rolls", [12] * 8) != rolls


def test_sys_exit_is_an_exception_with_its_status():
    from wasmpool import Pool
    from wasmpool.errors import TaskPanicked

    with Pool(TASKS, workers=1) as pool:
        with pytest.raises(TaskPanicked) as caught:
            pool.call("leave", 3)
        assert "SystemExit: 3" in str(caught.value)
        assert caught.value.exception == "SystemExit"
        line = TASKS.read_text().splitlines().index("    sys.exit(status)") + 1
        assert caught.value.location == f"tasks.py:{line}"
        assert pool.call("sqrt", 4) == 2.0


def test_fuel_stops_a_python_task():
    # Its compiled component is also the one the unit tests of
    # host/runtime/component.rs load from the cache in .ci/python.
    from wasmpool import Pool
    from wasmpool.errors import LimitExceeded

    with Pool(TASKS, workers=1, fuel=50_000_000) as pool:
        assert pool.call("sqrt", 9) == 3.0
        with pytest.raises(LimitExceeded) as caught:
            pool.call("pi_hits", 10**8)
        assert caught.value.limit == "fuel"
        assert pool.call("sqrt", 16) == 4.0


def test_a_granted_clock_can_be_read():
    from wasmpool import Pool

    with Pool(TASKS, workers=1, allow_wall_clock=True) as pool:
        assert abs(pool.call("now") - time.time()) < 60


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_the_sandbox_limits_hold_for_tasks_written_in_python(processes, capfd):
    from wasmpool import Pool
    from wasmpool.errors import LimitExceeded, TaskPanicked

    source = TASKS
    # The default max_memory (256 MiB): another would compile the component
    # again for its memory reservation.
    with Pool(source, workers=1, deadline=2.0, max_output=4096, processes=processes) as pool:
        with pytest.raises(LimitExceeded) as caught:
            pool.call("pi_hits", 10**10)
        assert caught.value.limit == "deadline"
        assert pool.call("hog", 8) == 8 << 20
        # CPython turns a refused memory.grow into MemoryError.
        with pytest.raises((LimitExceeded, TaskPanicked)) as caught:
            pool.call("hog", 300)
        assert "memory" in str(caught.value).lower()
        assert pool.call("chatty", 3) == 3
        with pytest.raises(LimitExceeded) as caught:
            pool.call("chatty", 10_000)
        assert caught.value.limit == "max_output"
        assert pool.call("sqrt", 16) == 4.0, "the pool serves on after each limit"
    assert "line 2" in capfd.readouterr().err


def test_the_example_of_hinsens_slide_runs():
    import subprocess
    import sys

    script = HERE.parents[1] / "examples" / "python" / "hinsen_slide.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "tasks written in Python: [0.0, 1.0, 1.414, 1.732, 2.0]" in done.stdout
    assert "tasks written in Rust:   [0.0, 1.0, 1.414, 1.732, 2.0]" in done.stdout


def test_a_result_python_cannot_read_is_only_that_inputs_error():
    # The task's JSON is sound (any integer), but this Python reads at most
    # 4300 digits: that input fails alone, the others keep their results.
    from wasmpool import Pool
    from wasmpool.errors import BadResult

    with Pool(TASKS, workers=2) as pool:
        outcomes = pool.map_each("digits", [3, 5000, 4])
        assert outcomes[0] == 100 and outcomes[2] == 1000
        assert isinstance(outcomes[1], BadResult) and outcomes[1].index == 1 and outcomes[1].input == 5000
        assert "4300" in str(outcomes[1]) and "task `digits` (input #1)" in str(outcomes[1])
        results = pool.imap("digits", [3, 5000, 4])
        assert next(results) == 100
        with pytest.raises(BadResult):
            next(results)
        assert next(results) == 1000
        with pytest.raises(BadResult) as caught:
            pool.map("digits", [3, 5000])
        assert caught.value.input == 5000
        with pytest.raises(BadResult):
            pool.call("digits", 5000)
        assert pool.call("digits", 2) == 10



@pytest.mark.parametrize("fresh_state", [True, False], ids=["fresh", "kept"])
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_messages_and_progress_from_a_python_task_reach_the_callbacks(processes, fresh_state):
    # tasks.py: `from wasmpool import progress, send` at the top, and
    # `walk` sends {"step": n} and reports progress every `every` steps.
    from wasmpool import Pool

    with Pool(TASKS, workers=2, processes=processes, fresh_state=fresh_state) as pool:
        seen = []
        results = pool.map(
            "walk", [(10, 2), (6, 3), (40, 1)],
            messages=lambda index, message: seen.append(("message", index, message)),
            task_progress=lambda index, done, total: seen.append(("progress", index, done, total)),
        )
        assert results == [10, 6, 40]
        for index, (steps, every) in enumerate([(10, 2), (6, 3), (40, 1)]):
            mine = [event[2:] for event in seen if event[1] == index]
            expected = []
            for step in range(every, steps + 1, every):
                expected += [({"step": step},), (step, steps)]
            assert mine == expected, (index, mine)
        # Without callbacks the messages go nowhere and the task goes on.
        assert pool.map("walk", [(5, 1)] * 3) == [5] * 3
        # One call, and the lazy maps, take them too; each input's events
        # come before its result.
        calls = []
        assert pool.call("walk", 4, 2, messages=lambda i, m: calls.append((i, m))) == 4
        assert calls == [(0, {"step": 2}), (0, {"step": 4})]
        order = []
        for position, result in enumerate(pool.imap("walk", [(3, 1)] * 4, chunksize=1,
                                                    messages=lambda i, m: order.append(("m", i)))):
            assert result == 3
            order.append(("r", position))  # imap: the n-th result is input n's
        for i in range(4):
            sent = [at for at, event in enumerate(order) if event == ("m", i)]
            assert len(sent) == 3 and max(sent) < order.index(("r", i)), (i, order)
        # A callback that raises: the exception comes out of the iteration,
        # and the events taken with that one are still delivered after.
        seen = []

        def fussy(index, message):
            if not seen:
                seen.append("raised")
                raise KeyError("the callback's own")
            seen.append(message["step"])

        steps = pool.imap("walk", [(3, 1)], messages=fussy)
        with pytest.raises(KeyError):
            next(steps)
        assert next(steps) == 3
        assert seen == ["raised", 2, 3]


def test_what_a_python_task_may_send_is_checked_inside_it(tmp_path):
    from wasmpool import Pool, send, progress, task_seed
    from wasmpool.errors import LimitExceeded, TaskPanicked

    # Outside a task (tasks.py imported and called directly) the same names
    # check their arguments and go nowhere.
    send({"a": [1, 2]})
    with pytest.raises(ValueError):
        send(float("nan"))
    with pytest.raises(ValueError):
        progress(-1, 3)
    with pytest.raises(RuntimeError):
        task_seed()
    source = tmp_path / "senders.py"
    source.write_text(
        "from wasmpool import send, progress, task_seed\n"
        "import wasmpool\n"
        "def a_set():\n    send({1, 2})\n"
        "def negative():\n    progress(-1, 2)\n"
        "def big(n):\n    send('x' * n)\n    return n\n"
        "def seed():\n    return task_seed()\n"
        "def pool():\n    return wasmpool.Pool('tasks.py')\n"
        "def other():\n    return wasmpool.Sender\n"
    )
    messages = []
    with Pool(source, workers=1, seed=5, max_output=1 << 16) as pool:
        with pytest.raises(TaskPanicked) as caught:
            pool.call("a_set", messages=lambda i, m: messages.append(m))
        assert caught.value.exception == "TypeError"
        with pytest.raises(TaskPanicked) as caught:
            pool.call("negative")
        assert "done must be a whole number" in str(caught.value)
        assert pool.call("big", 10, messages=lambda i, m: messages.append(m)) == 10
        with pytest.raises(LimitExceeded) as caught:
            pool.call("big", 1 << 20, messages=lambda i, m: messages.append(m))
        assert "message" in str(caught.value)
        assert messages == ["x" * 10]
        seeds = pool.map("seed", [None] * 3)
        assert len(set(seeds)) == 3 and all(0 <= s < 1 << 64 for s in seeds)
        with pytest.raises(TaskPanicked) as caught:
            pool.call("pool")
        assert caught.value.exception == "wasmpool.HostOnly"
        assert "wasmpool.Pool belongs to the program that runs the tasks" in str(caught.value)
        assert "inside a task, wasmpool offers only send, progress, task_seed" in str(caught.value)
        with pytest.raises(TaskPanicked) as caught:
            pool.call("other")
        assert "inside a task, wasmpool offers only send, progress, task_seed" in str(caught.value)


@pytest.mark.parametrize("fresh_state", [True, False], ids=["fresh", "kept"])
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_an_initializer_runs_on_every_instance_before_its_inputs(processes, fresh_state):
    from wasmpool import Pool
    from wasmpool.errors import TaskPanicked

    with Pool(TASKS, workers=2, processes=processes, fresh_state=fresh_state,
              initializer="load_table", initargs=(100,)) as pool:
        sizes = pool.map("extend_table", [5] * 6, chunksize=3)
        if fresh_state:
            # Every input starts from the state the init left: 100 entries.
            assert sizes == [105] * 6
        else:
            # One instance per worker, initialized once: each worker's
            # inputs see the entries its earlier inputs added.
            assert sorted(sizes) == [105, 105, 110, 110, 115, 115] or sorted(sizes) == [105, 110, 115, 120, 125, 130]
    # Without the init, the table is None: the task's own exception.
    with Pool(TASKS, workers=1, processes=processes, fresh_state=fresh_state) as pool:
        with pytest.raises(TaskPanicked) as caught:
            pool.call("extend_table", 1)
        assert caught.value.exception == "AttributeError"


def test_an_initializer_that_fails_or_does_not_fit_fails_the_pool():
    from wasmpool import Pool
    from wasmpool.errors import WasmpoolError

    for processes in (False, True):
        with pytest.raises(WasmpoolError) as caught:
            Pool(TASKS, workers=1, processes=processes, initializer="boom", initargs=(0,))
        # As for any module's init task: the task's own error, at build.
        text = str(caught.value)
        assert "task `boom` (input #0)" in text and "ZeroDivisionError" in text, text
    with pytest.raises(WasmpoolError) as caught:
        Pool(TASKS, workers=1, initializer="load_table", initargs=(1, 2))
    assert "takes 1 argument(s), but the array has 2" in str(caught.value)
    with pytest.raises(WasmpoolError) as caught:
        Pool(TASKS, workers=1, initializer="load_tabel")
    assert "load_table" in str(caught.value)  # the suggestion
    with pytest.raises(TypeError):
        Pool(TASKS, initializer=len)


def test_a_nan_made_by_arithmetic_has_the_same_bits_on_every_machine():
    # `inf - inf` in CPython is an f64.sub in the component: x86-64 makes a
    # negative NaN (…f8ff), aarch64 a positive one. The NaN rewrite of the
    # component's core modules gives the canonical positive one everywhere.
    from wasmpool import Pool

    for processes in (False, True):
        with Pool(TASKS, workers=1, processes=processes) as pool:
            assert pool.call("nan_bits") == "000000000000f87f"


def test_standard_modules_imported_inside_a_task_are_there(tmp_path):
    # The component holds only the modules its build imported: an import in
    # a function's body is run by the build too (the runner's `preload`).
    from wasmpool import Pool
    from wasmpool.errors import TaskPanicked

    source = tmp_path / "lazy.py"
    source.write_text(
        "def stats(xs):\n    import statistics\n    return statistics.mean(xs)\n"
        "def third(n):\n    from fractions import Fraction\n    return str(Fraction(n, 3))\n"
        "def packed(x):\n    import struct\n    return struct.pack('<d', x).hex()\n"
        "def missing():\n    import no_such_package_here\n"
    )
    with Pool(source, workers=1) as pool:
        assert pool.call("stats", [1, 2, 3, 4]) == 2.5
        assert pool.call("third", 2) == "2/3"
        assert pool.call("packed", 1.5) == "000000000000f83f"
        with pytest.raises(TaskPanicked) as caught:
            pool.call("missing")
        assert caught.value.exception == "ModuleNotFoundError"


def test_a_flood_of_messages_does_not_hold_back_another_inputs_result():
    # Input 1 sends 20,000 messages, faster than they are taken; input 0's
    # result must come out once the events queued before it are taken, not
    # after the flood.
    from wasmpool import Pool

    with Pool(TASKS, workers=2) as pool:
        order = []
        results = pool.imap_unordered("walk", [(50, 1), (20_000, 1)], chunksize=1, with_index=True,
                                      messages=lambda i, m: order.append(("m", i)))
        for index, result in results:
            order.append(("r", index))
        assert order.count(("m", 1)) == 20_000
        # Before the flood's end. How far into it depends on when input 0's
        # worker gets a core: on 2 cores shared with another pytest process
        # (.ci/python), it can be late.
        flood_seen_before = order[:order.index(("r", 0))].count(("m", 1))
        assert flood_seen_before < 20_000, flood_seen_before
