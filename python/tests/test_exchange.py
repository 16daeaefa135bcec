"""`Pool.exchange()`: tasks started one by one, and their messages,
progress reports and results taken as they arrive, from Rust tasks and
tasks written in Python, on both worker kinds."""
import threading
from pathlib import Path

import pytest

from conftest import python_tasks_available
from wasmpool import Finished, Message, Pool, Progress
from wasmpool.errors import InvalidInput, NoSuchTask, TaskCancelled, TaskError

TASKS = Path(__file__).resolve().parents[2] / "examples" / "python" / "tasks.py"


def _collatz(n):
    values = []
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        values.append(n)
    return values


def _by_task(events):
    grouped = {}
    for event in events:
        grouped.setdefault(event.task, []).append(event)
    return grouped


def test_events_of_rust_tasks_arrive_each_before_its_result(pool):
    with pool.exchange() as exchange:
        numbers = [exchange.start("collatz", n) for n in (27, 97)]
        numbers.append(exchange.start("slow_sum", 1000))
        assert numbers == [0, 1, 2]
        events = list(exchange)
        assert exchange.running == 0
    grouped = _by_task(events)
    for number, n in zip(numbers, (27, 97)):
        *messages, last = grouped[number]
        assert [m.get() for m in messages] == _collatz(n) and all(isinstance(m, Message) for m in messages)
        assert isinstance(last, Finished) and last.get() == len(_collatz(n))
    *reports, last = grouped[numbers[2]]
    assert all(isinstance(r, Progress) for r in reports) and (reports[-1].done, reports[-1].total) == (1000, 1000)
    assert last.get() == sum(range(1000))


def test_a_failed_task_is_a_finished_event_with_its_error(pool):
    with pool.exchange() as exchange:
        exchange.start("divide", 7, 0)
        exchange.start("divide", 8, 2)
        events = sorted(exchange, key=lambda e: e.task)
    failed, fine = events
    assert isinstance(failed.error, TaskError) and failed.result is None
    assert failed.error.input == (7, 0) and failed.error.index == 0
    with pytest.raises(TaskError):
        failed.get()
    assert fine.get() == 4


def test_what_cannot_start_is_refused_at_start(pool):
    with pool.exchange() as exchange:
        with pytest.raises(NoSuchTask):
            exchange.start("sqr", 4)
        with pytest.raises(InvalidInput) as refused:
            exchange.start("add", 1)
        assert refused.value.input == 1
        assert exchange.running == 0
        assert list(exchange) == []
        # Iterating again after starting more.
        exchange.start("add", 1, 2)
        assert [e.get() for e in exchange] == [3]


def test_cancel_from_another_thread_stops_the_tasks(module, kind):
    with Pool(module, workers=1, processes=(kind == "processes")) as pool:
        with pool.exchange() as exchange:
            exchange.start("spin", 2**63)
            exchange.start("spin", 2**63)
            threading.Timer(0.3, exchange.cancel).start()
            events = list(exchange)
        assert [type(e.error) for e in events] == [TaskCancelled, TaskCancelled]


def test_an_exchange_is_closed_by_its_block(module, kind):
    with Pool(module, workers=1, processes=(kind == "processes")) as pool:
        with pool.exchange(capacity=1) as exchange:
            exchange.start("spin", 2**63)
        # The one worker is free again: the spinning task was cancelled.
        assert pool.call("add", 1, 2) == 3
        with pytest.raises(RuntimeError, match="closed"):
            exchange.start("add", 1, 2)
        assert list(exchange) == []
        with pytest.raises(ValueError, match="capacity"):
            pool.exchange(capacity=0)


def test_close_from_another_thread_ends_the_iteration(module):
    with Pool(module, workers=1) as pool:
        exchange = pool.exchange()
        exchange.start("spin", 2**63)
        threading.Timer(0.3, exchange.close).start()
        assert list(exchange) == []
        assert pool.call("add", 1, 2) == 3


def test_a_cancelled_exchange_starts_nothing_more(pool):
    with pool.exchange() as exchange:
        exchange.start("add", 1, 2)
        exchange.cancel()
        with pytest.raises(RuntimeError, match="cancelled"):
            exchange.start("add", 3, 4)
        assert len(list(exchange)) == 1


def test_a_closed_pool_starts_nothing(module):
    from wasmpool.errors import PoolClosed

    pool = Pool(module, workers=1)
    exchange = pool.exchange()
    pool.close()
    with pytest.raises(PoolClosed):
        exchange.start("add", 1, 2)
    exchange.close()


@python_tasks_available()
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_events_of_python_tasks(processes):
    with Pool(TASKS, workers=2, processes=processes) as pool:
        with pool.exchange() as exchange:
            exchange.start("walk", 10, 5)
            exchange.start("boom", 0)
            grouped = _by_task(list(exchange))
    walk = grouped[0]
    assert [(type(e).__name__, getattr(e, "message", None)) for e in walk if isinstance(e, Message)] == [
        ("Message", {"step": 5}), ("Message", {"step": 10})]
    assert [(e.done, e.total) for e in walk if isinstance(e, Progress)] == [(5, 10), (10, 10)]
    assert walk[-1].get() == 10
    (boom,) = grouped[1]
    assert isinstance(boom.error, ZeroDivisionError) and isinstance(boom.error, TaskError)
    assert boom.error.input == 0 and boom.error.index == 1
