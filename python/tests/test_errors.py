"""Each kind of failure as its exception, naming the task, the input's
index and the input; and one bad input losing nothing else."""

import os
import signal
import time

import pytest

from wasmpool import Pool
from wasmpool import errors
from conftest import REPO, python_tasks_available


def test_a_panic_names_task_index_input_and_location(pool):
    with pytest.raises(errors.TaskPanicked) as caught:
        pool.map("divide", [(6, 3), (1, 0), (8, 2)])
    e = caught.value
    assert (e.task, e.index, e.input, e.kind) == ("divide", 1, (1, 0), "panic")
    assert "cannot divide 1 by zero" in str(e)
    assert "failures.rs" in e.location
    assert e.exception == ""  # a Rust panic has no exception type
    assert "input: (1, 0)" in str(e)
    assert isinstance(e, errors.TaskError) and isinstance(e, errors.WasmpoolError)


def test_map_each_keeps_every_other_result(pool):
    outcomes = pool.map_each("fail_if_odd", range(6))
    assert [o for o in outcomes if not isinstance(o, Exception)] == [0, 1, 2]
    failed = [o for o in outcomes if isinstance(o, Exception)]
    assert [f.index for f in failed] == [1, 3, 5]
    assert all(isinstance(f, errors.TaskFailed) and "is odd" in str(f) for f in failed)
    assert [f.input for f in failed] == [1, 3, 5]


def test_imap_raises_at_the_failed_input_and_goes_on(pool):
    results = pool.imap("fail_if_odd", [0, 1, 2])
    assert next(results) == 0
    with pytest.raises(errors.TaskFailed) as caught:
        next(results)
    assert caught.value.index == 1 and caught.value.input == 1
    assert next(results) == 1


def test_a_trap_carries_the_wasm_backtrace(pool):
    with pytest.raises(errors.TaskTrapped) as caught:
        pool.call("trap", 3)
    assert any("trap_deeper" in frame for frame in caught.value.frames)


def test_limits_name_the_setting(module, kind):
    processes = kind == "processes"
    with Pool(module, workers=1, processes=processes, deadline=0.2) as pool:
        with pytest.raises(errors.LimitExceeded) as caught:
            pool.call("spin", 2**64 - 1)
        assert caught.value.limit == "deadline"
        assert pool.call("add", 1, 2) == 3, "the worker serves the next task"
    with Pool(module, workers=1, processes=processes, fuel=100_000) as pool:
        with pytest.raises(errors.LimitExceeded) as caught:
            pool.call("spin", 10**9)
        assert caught.value.limit == "fuel"
        # A call's own budget, instead of the pool's.
        assert isinstance(pool.call("spin", 10**5, fuel=10**8), int)
    with Pool(module, workers=1, processes=processes, max_memory=8 << 20) as pool:
        with pytest.raises(errors.LimitExceeded) as caught:
            pool.call("allocate", 64 << 20)
        assert caught.value.limit == "max_memory"


def test_wrong_arguments_are_the_inputs_error(pool):
    outcomes = pool.map_each("add", [(1, 2), (1, 2, 3), "x", (4, 5)])
    assert outcomes[0] == 3 and outcomes[3] == 9
    assert isinstance(outcomes[1], errors.InvalidInput) and "takes 2 argument" in str(outcomes[1])
    assert isinstance(outcomes[2], (errors.InvalidInput, errors.BadArguments))
    assert outcomes[2].input == "x"
    with pytest.raises(errors.BadArguments):
        pool.call("sqrt", "four")


def test_an_input_python_cannot_send_is_a_type_error(pool):
    with pytest.raises(TypeError, match="input 1"):
        pool.map("sqrt", [1.0, object(), 2.0])


def test_a_misspelt_task_suggests_the_closest_names(pool):
    with pytest.raises(errors.NoSuchTask) as caught:
        pool.map("sqr", [1.0])
    assert "did you mean `sqrt`" in str(caught.value)
    assert caught.value.task == "sqr" and "sqrt" in caught.value.available
    assert isinstance(caught.value, LookupError)


def test_a_bad_module_is_a_load_error(tmp_path):
    missing = tmp_path / "missing.wasm"
    with pytest.raises(errors.ModuleLoadError) as caught:
        Pool(missing)
    assert caught.value.path == str(missing)
    not_wasm = tmp_path / "tasks.wasm"
    not_wasm.write_text("print('hello')")
    with pytest.raises(errors.ModuleLoadError, match="not a WebAssembly binary"):
        Pool(not_wasm)


def test_an_impossible_setting_is_a_config_error(module):
    with pytest.raises(errors.ConfigError):
        Pool(module, workers=0)
    with pytest.raises(ValueError, match="deadline"):
        Pool(module, deadline=-1)


def test_text_from_outside_is_escaped_in_messages(pool):
    with pytest.raises(errors.NoSuchTask) as caught:
        pool.call("\x1b[2Jsqrt", 1.0)
    assert "\x1b" not in str(caught.value)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills a worker process with SIGKILL (POSIX)")
def test_a_killed_worker_process_is_worker_crashed_and_replaced(module):
    with Pool(module, workers=1, processes=True, max_retries=0) as pool:
        (pid,) = pool.worker_pids()
        future = pool.submit("spin", 2**64 - 1)
        time.sleep(0.3)  # the task is running
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(errors.WorkerCrashed) as caught:
            future.result(timeout=60)
        assert (caught.value.task, caught.value.index, caught.value.kind) == ("spin", 0, "worker_crashed")
        assert "signal 9" in str(caught.value) or "SIGKILL" in str(caught.value), str(caught.value)
        assert pool.call("add", 1, 2) == 3, "a new process serves the next task"
        assert pool.worker_pids() != [pid]


@python_tasks_available()
def test_a_python_tasks_builtin_exception_is_caught_as_itself():
    with Pool(REPO / "examples" / "python" / "tasks.py", workers=1) as pool:
        with pytest.raises(ZeroDivisionError) as caught:
            pool.call("boom", 0)
        error = caught.value
        # Still the pool's error, with everything it names.
        assert isinstance(error, errors.TaskPanicked) and isinstance(error, errors.TaskError)
        assert (error.task, error.index, error.input, error.exception) == ("boom", 0, 0, "ZeroDivisionError")
        assert "tasks.py:27" in error.location
        outcomes = pool.map_each("boom", [1, 0])
        assert outcomes[0] == 1.0 and isinstance(outcomes[1], ZeroDivisionError)
        assert outcomes[1].index == 1
    # A task's own exception class (not a built-in) stays a TaskPanicked.
    error = errors.TaskPanicked("m", task="t", exception="tasks.MyError")
    assert type(errors.with_python_type(error)) is errors.TaskPanicked
