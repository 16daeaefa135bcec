"""``wasmpool.Executor``: the pool as a ``concurrent.futures.Executor``,
for code written against that interface (``submit``, ``map``,
``shutdown``, ``as_completed`` and ``wait`` on its futures)."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Iterable, Iterator, Optional

from ._pool import ModuleSource, Pool, TaskRef


class Executor(concurrent.futures.Executor):
    """A :class:`concurrent.futures.Executor` whose calls run the tasks of
    one module on a :class:`Pool` of its own.

    ``Executor("tasks.py", max_workers=4)`` takes the pool's module and,
    as keyword arguments, any of ``Pool``'s settings (``max_workers`` is
    its ``workers``). A call names a task (``"sqrt"``) or passes a function
    of the tasks (``sqrt``); its arguments are positional, as a task's are.
    ``submit`` returns a ``concurrent.futures.Future``; ``map`` yields the
    results in input order and raises a failed input's ``TaskError`` where
    its result would be; ``shutdown`` closes the pool.

    .. code-block:: python

        with Executor("tasks.py", max_workers=2) as ex:
            futures = [ex.submit("sqrt", x) for x in range(10)]
            for done in concurrent.futures.as_completed(futures):
                print(done.result())
    """

    def __init__(self, module: ModuleSource, max_workers: Optional[int] = None, **pool_options: Any) -> None:
        if "workers" in pool_options:
            raise TypeError("Executor takes max_workers (as concurrent.futures executors do), not workers")
        self._pool = Pool(module, workers=max_workers, **pool_options)

    @property
    def pool(self) -> Pool:
        """The pool the calls run on (its ``tasks()``, ``stats()``, ...)."""
        return self._pool

    def submit(self, fn: TaskRef, /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        """Starts the task ``fn`` on ``args``; its future's result is the task's."""
        if kwargs:
            raise TypeError(f"tasks take positional arguments only, not {', '.join(kwargs)}=")
        return self._pool.submit(fn, *args)

    def map(self, fn: TaskRef, *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: int = 1) -> Iterator[Any]:
        """``fn`` over the iterables' items side by side (``map(fn, xs,
        ys)`` calls ``fn(x, y)``), results in input order, as
        ``concurrent.futures.Executor.map``. Without ``timeout``, the
        inputs are pulled as workers have room (``Pool.imap``),
        ``chunksize`` at a time; with one, every input is submitted at once
        and a result not ready ``timeout`` seconds after this call raises
        ``TimeoutError`` (the calls not started are cancelled)."""
        if not iterables:
            raise TypeError("map() needs at least one iterable of inputs")
        if timeout is not None:
            # A call per input, each waited for until the time is up: the
            # base class's map, over `submit`.
            return super().map(fn, *iterables, timeout=timeout)  # type: ignore[arg-type]  # submit takes a name too
        inputs: Iterable[Any] = iterables[0] if len(iterables) == 1 else zip(*iterables)
        return self._pool.imap(fn, inputs, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Closes the pool: no call may start after. Its workers stop once
        the calls running on it are done (``cancel_futures``: the
        submitted calls not yet started are cancelled). ``wait`` is
        accepted for the interface; closing returns at once either way."""
        self._pool.close()
