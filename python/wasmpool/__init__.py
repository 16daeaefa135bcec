"""wasmpool: a worker pool whose tasks are WebAssembly functions.

All the task functions live in one Wasm module; every worker (a thread, or
a process) loads that same module, so every task exists in every worker,
on every platform, whatever the order things were defined in. Arguments
and results are copied in and out; each task runs in a sandbox with
limits; per-task seeds make results the same for any number of workers.

    from wasmpool import Pool

    with Pool("tasks.wasm", workers=4, seed=7) as pool:
        print(pool.map("sqrt", range(100)))
        for row in pool.imap("mandel_row", ((y, 800, 600, 256) for y in range(600))):
            ...

Inside a task written in Python, ``send(message)`` and ``progress(done,
total)`` reach the program running it (the ``messages`` and
``task_progress`` callbacks of ``Pool.map``).

See docs/python.md in the repository.
"""

from . import errors
from ._in_task import progress, send, task_seed
from ._events import Event, Exchange, Finished, Message, Progress
from ._executor import Executor
from ._pool import MapIterator, Pool, PoolStats, Task, WorkerStats
from .errors import TaskError, WasmpoolError

__all__ = [
    "Pool", "Executor", "Task", "PoolStats", "WorkerStats", "MapIterator", "TaskError", "WasmpoolError", "errors",
    "send", "progress", "task_seed", "Exchange", "Event", "Message", "Progress", "Finished",
]
