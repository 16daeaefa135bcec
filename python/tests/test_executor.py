"""`wasmpool.Executor`: the pool behind the `concurrent.futures.Executor`
interface, on the demo module, with both worker kinds."""
import concurrent.futures
import math

import pytest

from wasmpool import Executor, errors


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_submit_map_and_as_completed(module, processes):
    with Executor(module, max_workers=2, processes=processes, seed=7) as ex:
        assert isinstance(ex, concurrent.futures.Executor)
        assert ex.pool.workers == 2
        futures = {ex.submit("sqrt", float(x)): x for x in range(20)}
        for done in concurrent.futures.as_completed(futures, timeout=60):
            assert done.result() == math.sqrt(futures[done])
        waited = concurrent.futures.wait([ex.submit("add", 2, 3)], timeout=60)
        assert [f.result() for f in waited.done] == [5]
        assert list(ex.map("sqrt", [4.0, 9.0, 16.0])) == [2.0, 3.0, 4.0]
        # Several iterables side by side, as Executor.map: add(1, 10), add(2, 20).
        assert list(ex.map("add", [1, 2], [10, 20], timeout=60, chunksize=2)) == [11, 22]
    with pytest.raises(errors.PoolClosed):
        ex.submit("sqrt", 1.0)


def test_failures_and_refusals(module):
    with Executor(module, max_workers=1) as ex:
        failed = ex.submit("divide", 1, 0)
        assert isinstance(failed.exception(timeout=60), errors.TaskPanicked)
        results = ex.map("divide", [4, 1, 6], [2, 0, 3])
        assert next(results) == 2
        with pytest.raises(errors.TaskPanicked):
            next(results)
        with pytest.raises(TypeError, match="positional arguments only"):
            ex.submit("add", 1, b=2)
        with pytest.raises(TypeError, match="needs at least one iterable"):
            ex.map("sqrt")
    with pytest.raises(TypeError, match="max_workers"):
        Executor(module, workers=2)


def test_map_with_a_timeout_raises_timeout_error(module):
    with Executor(module, max_workers=1, deadline=3) as ex:
        # spin(2**64 - 1) runs until the task's deadline, far past the map's timeout.
        results = ex.map("spin", [2**64 - 1], timeout=0.5)
        with pytest.raises(concurrent.futures.TimeoutError):
            next(results)
