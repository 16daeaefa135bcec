"""The calls: map, imap, imap_unordered, map_each, call, submit, with
ordinary Python values in and out, in both worker kinds."""

import concurrent.futures
import math

import pytest

from wasmpool import Pool, Task
from wasmpool.errors import PoolClosed


def test_hinsens_slide_sqrt_over_range_100(pool):
    assert pool.map("sqrt", range(100)) == [math.sqrt(x) for x in range(100)]


def test_several_arguments_are_a_tuple_like_a_normal_call(pool):
    assert pool.call("add", 2, 40) == 42
    assert pool.map("add", [(1, 2), (3, 4), [5, 6]]) == [3, 7, 11]
    # A task of no arguments; results of several values come back as lists.
    assert pool.call("noop") is None
    assert pool.call("echo_mixed", -3, "ünïcode", [1.5, -0.0], None) == [-3, "ünïcode", [1.5, -0.0], None]
    assert pool.call("echo_bytes", b"\x00\xffab") == [0, 255, 97, 98]
    assert pool.call("word_frequencies", "b a b") == {"a": 1, "b": 2}


def test_imap_keeps_input_order_and_streams_a_generator(pool):
    rows = pool.imap("mandel_row", ((y, 40, 30, 64) for y in range(30)), chunksize=1)
    with pytest.raises(TypeError):
        len(rows)  # a generator has no length
    rows = list(rows)
    assert len(rows) == 30 and all(len(row) == 40 for row in rows)
    assert rows == pool.map("mandel_row", [(y, 40, 30, 64) for y in range(30)])
    assert len(pool.imap("sqrt", range(10))) == 10


def test_imap_unordered_gives_every_result_once(pool):
    results = list(pool.imap_unordered("add", ((i, 1) for i in range(200))))
    assert sorted(results) == list(range(1, 201))
    pairs = list(pool.imap_unordered("add", [(i, 1) for i in range(50)], with_index=True))
    assert sorted(pairs) == [(i, i + 1) for i in range(50)]


def test_an_endless_generator_streams_through_in_bounded_memory(pool):
    def endless():
        i = 0
        while True:
            yield float(i)
            i += 1

    stream = pool.imap("sqrt", endless())
    first = [next(stream) for _ in range(1000)]
    stream.close()
    assert first[999] == math.sqrt(999)


def test_submit_returns_a_concurrent_future(pool):
    futures = [pool.submit("add", i, i) for i in range(20)]
    assert [f.result(timeout=60) for f in futures] == [2 * i for i in range(20)]
    assert isinstance(futures[0], concurrent.futures.Future)


def test_tasks_lists_names_parameters_and_docs(pool):
    tasks = {t.name: t for t in pool.tasks()}
    assert isinstance(tasks["sqrt"], Task)
    assert tasks["add"].params == (("a", "i64"), ("b", "i64"))
    assert str(tasks["add"]) == "add(a: i64, b: i64) -> i64"
    assert "square root" in tasks["sqrt"].doc.lower()


def test_stats_count_the_tasks_run(pool):
    pool.map("add", [(i, i) for i in range(100)])
    stats = pool.stats()
    assert stats.tasks == 100
    assert len(stats.workers) == 2 == pool.workers
    assert sum(w.tasks for w in stats.workers) == 100


def test_progress_callback_sees_every_result(pool):
    seen = []
    pool.map("sqrt", range(25), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 25) for i in range(1, 26)]


def test_worker_kinds_are_what_was_asked(pool, kind):
    assert pool.worker_kind == kind
    pids = pool.worker_pids()
    if kind == "processes":
        assert len(pids) == 2 and all(isinstance(p, int) for p in pids)
    else:
        assert pids == []


def test_a_closed_pool_refuses_calls(module):
    with Pool(module, workers=1) as pool:
        assert pool.call("add", 1, 1) == 2
    assert pool.closed
    with pytest.raises(PoolClosed):
        pool.map("sqrt", [1.0])
    assert "closed" in repr(pool)


def test_module_bytes_work_as_a_path_does(module):
    with Pool(module.read_bytes(), workers=1) as pool:
        assert pool.call("sqrt", 16) == 4.0


def test_a_rust_tasks_messages_and_progress_reach_the_callbacks(pool):
    # Called from Python (through JSON), a Rust task's `Sender` sends JSON.
    values = {}
    reports = []
    steps = pool.map("collatz", [27, 6], messages=lambda i, m: values.setdefault(i, []).append(m),
                     task_progress=lambda i, done, total: reports.append((i, done, total)))
    assert steps == [111, 8]
    assert values[1] == [3, 10, 5, 16, 8, 4, 2, 1]
    assert len(values[0]) == 111 and values[0][-1] == 1
    assert reports == []
    assert pool.call("slow_sum", 100, task_progress=lambda i, done, total: reports.append((i, done, total))) == 4950
    assert reports[-1] == (0, 100, 100) and len(reports) == 10


def test_an_initializer_runs_a_rust_task_before_the_inputs(module, kind):
    from wasmpool import Pool

    processes = kind == "processes"
    with Pool(module, workers=2, processes=processes, initializer="counter_set", initargs=(100,)) as pool:
        assert pool.map("counter_next", [None] * 6) == [101] * 6
    with Pool(module, workers=1, processes=processes, fresh_state=False, initializer="counter_set",
              initargs=[10]) as pool:
        assert [pool.call("counter_next") for _ in range(3)] == [11, 12, 13]


def test_multiprocessing_habits_work_or_say_what_to_do(module):
    from wasmpool import Pool

    with pytest.raises(TypeError, match=r"for 4 workers, Pool\('tasks.py', workers=4\)"):
        Pool(4)
    for wrong in (None, [], {"tasks": "tasks.py"}):
        with pytest.raises(TypeError, match="Pool's first argument is the tasks: the path of a .wasm or .py file"):
            Pool(wrong)
    with Pool(module, workers=2) as pool:
        # starmap, as multiprocessing.Pool.starmap: an iterable of argument tuples.
        assert pool.starmap("add", [(1, 2), [3, 4]]) == [3, 7]
        assert pool.starmap("sqrt", [(4.0,), (9.0,)]) == [2.0, 3.0]
        assert pool.starmap("add", iter([(5, 6)])) == [11]
