"""Many running tasks and the events they send: `Pool.exchange()`, as
pprocess's ``Exchange`` and the Rust library's ``wasmpool::Exchange``.

    with Pool("guest_tasks.wasm") as pool, pool.exchange() as exchange:
        for n in [27, 97, 871]:
            exchange.start("collatz", n)
        for event in exchange:
            if isinstance(event, wasmpool.Message):
                print(f"task {event.task} passed {event.message}")
            elif isinstance(event, wasmpool.Progress):
                print(f"task {event.task}: {event.done}/{event.total}")
            else:
                print(f"task {event.task} took {event.get()} steps")

Events come in the order they arrive, from every task at once; a task's
messages and progress reports all come before its ``Finished``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from .errors import TaskError

if TYPE_CHECKING:
    from ._native import NativeExchange
    from ._pool import Pool, TaskRef


@dataclass(frozen=True)
class Message:
    """Task number ``task`` sent ``message`` (``send(...)`` in Python, a
    ``Sender`` in Rust). ``error`` is set instead when the message could not
    be read; :meth:`get` returns the message or raises it."""

    task: int
    message: Any
    error: Optional[TaskError] = None

    def get(self) -> Any:
        """The message, or its error raised."""
        if self.error is not None:
            raise self.error
        return self.message


@dataclass(frozen=True)
class Progress:
    """Task number ``task`` reported ``progress(done, total)``."""

    task: int
    done: int
    total: int


@dataclass(frozen=True)
class Finished:
    """Task number ``task`` finished: with ``result``, or failed with
    ``error`` (a :class:`~wasmpool.TaskError`, of the Python type of a
    built-in exception the task raised). :meth:`get` returns the result or
    raises the error."""

    task: int
    result: Any
    error: Optional[TaskError] = None

    def get(self) -> Any:
        """The result, or the task's error raised."""
        if self.error is not None:
            raise self.error
        return self.result


Event = Union[Message, Progress, Finished]


class Exchange:
    """Tasks started on a pool, and the events they send, taken by
    iterating: see :meth:`Pool.exchange`."""

    def __init__(self, pool: "Pool", native: "NativeExchange") -> None:
        self._pool = pool
        self._native = native

    def start(self, task: "TaskRef", *args: Any) -> int:
        """Starts ``task(*args)`` and returns its number in this exchange
        (0, 1, … in the order started; task ``n`` runs with the seed of
        input ``n``, so a run started in the same order repeats)."""
        name = self._pool._task_name(task)
        self._pool._native.workers()  # a closed pool raises PoolClosed here
        most = self._pool._arity(name)[1]
        # One input: the argument itself for a task of one, else the tuple.
        item = args[0] if most == 1 and len(args) == 1 else args
        given = args[0] if len(args) == 1 else args
        try:
            return self._native.start(name, item, self._pool._arity(name), given)
        except TaskError as error:
            # Refused before it ran (arguments of the wrong number): the
            # input as the caller wrote it, as `Pool.call` gives it.
            error.input = given
            raise

    @property
    def running(self) -> int:
        """How many started tasks have not finished."""
        return self._native.running()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        """The next event, waiting as long as it takes; stops once every
        task started so far has finished (start more, and iterate again)."""
        event = self._native.next_event()
        if event is None:
            raise StopIteration
        return event  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stops the unfinished tasks (from any thread): each still ends
        with a ``Finished`` event, its error ``TaskCancelled`` or its result
        if it ran to the end. A cancelled exchange starts nothing more."""
        self._native.cancel()

    def close(self) -> None:
        """Cancels the unfinished tasks and drops the events not taken
        (from another thread while one iterates: within 50 ms, and that
        iteration ends)."""
        self._native.close()

    def __enter__(self) -> "Exchange":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
