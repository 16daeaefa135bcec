"""The pool: the Python face of the Rust library's ``wasmpool::Pool``."""

from __future__ import annotations

import collections
import concurrent.futures
import operator
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _args, errors
from ._native import NativePool
from .errors import _MISSING

__all__ = ["Pool", "Task", "PoolStats", "WorkerStats", "MapIterator"]

# A module: a path (.wasm, or .py for tasks written in Python), its bytes,
# or functions to make tasks of (inline tasks, `_inline.pack`).
ModuleSource = Union[str, "os.PathLike[str]", bytes, Callable[..., Any], Sequence[Callable[..., Any]]]
# A task: its name, or a function of the pool's own tasks file (its name is taken).
TaskRef = Union[str, Callable[..., Any]]
Progress = Callable[[int, Optional[int]], Any]
# messages(index, message): a message a task sent (`wasmpool.send`).
Messages = Callable[[int, Any], Any]
# task_progress(index, done, total): a task's `wasmpool.progress(done, total)`.
TaskProgress = Callable[[int, int, int], Any]


@dataclass(frozen=True)
class Task:
    """A task of the module: its name, parameters (``(name, type)`` pairs,
    with Rust's types), result type and doc comment."""

    name: str
    params: Tuple[Tuple[str, str], ...]
    result: str
    doc: str

    def __str__(self) -> str:
        params = ", ".join(f"{name}: {ty}" for name, ty in self.params)
        return f"{self.name}({params}) -> {self.result}"


@dataclass(frozen=True)
class WorkerStats:
    """What one worker has done: task inputs run, seconds busy, and (worker
    processes) tasks run again after their process died."""

    tasks: int
    busy: float
    retries: int


@dataclass(frozen=True)
class PoolStats:
    """What the pool's workers have done since it was built."""

    workers: List[WorkerStats] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        """Task inputs run by all workers."""
        return sum(w.tasks for w in self.workers)

    @property
    def retries(self) -> int:
        """Retries by all workers."""
        return sum(w.retries for w in self.workers)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _worker_command() -> List[str]:
    """How a worker process starts: this interpreter, isolated from the
    environment's Python settings, importing this very package (found by
    its path) and serving as the worker (the extension is its own worker
    executable, so nothing else needs installing)."""
    if not sys.executable:
        raise RuntimeError(
            "worker processes need the Python interpreter's path, and sys.executable is empty "
            "(an embedded interpreter?): use processes=False"
        )
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import sys; sys.path.insert(0, {!r}); "
        "from wasmpool._native import worker_main; worker_main()"
    ).format(package_parent)
    return [sys.executable, "-I", "-c", code]


class MapIterator(Iterator[Any]):
    """The results of ``imap`` or ``imap_unordered``, one per input.

    A failed input raises its :class:`~wasmpool.errors.TaskError` where its
    result would be; iterating on goes on with the next input's result, as
    with ``multiprocessing``. ``len()`` works when the inputs had a length
    (so progress bars such as tqdm show a total). Closing it (or leaving
    the loop and dropping it) cancels the inputs not yet run.
    """

    def __init__(self, task: str, stream: Any, pending: Dict[int, Any], total: Optional[int],
                 with_index: bool) -> None:
        self._task = task
        self._stream = stream
        self._pending = pending
        self._total = total
        self._with_index = with_index

    def __iter__(self) -> "MapIterator":
        return self

    def __len__(self) -> int:
        if self._total is None:
            raise TypeError("the inputs of this map have no length")
        return self._total

    def __next__(self) -> Any:
        index, text, error = next(self._stream)
        result, failed = _outcome(self._task, self._pending, index, text, error)
        if failed:
            raise result
        return (index, result) if self._with_index else result

    def close(self) -> None:
        """Cancels the inputs not yet run."""
        self._stream.cancel()

    def __enter__(self) -> "MapIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _outcome(task: str, pending: Dict[int, Any], index: int, text: Optional[str],
             error: Optional[Any]) -> Tuple[Any, bool]:
    """Input ``index``'s result, or its error with the input attached, and
    whether it is an error; the input leaves ``pending``. A result this
    Python cannot read (JSON nested past its recursion limit, an integer
    over its 4300 digits) is that input's own error, as ``BadResult``."""
    value = pending.pop(index, _MISSING)
    if error is None:
        try:
            return _args.loads(text), False
        except (ValueError, RecursionError) as e:
            error = _args.unreadable_result(task, index, e)
    error.input = value
    return errors.with_python_type(error), True


class _Listened(Iterator[Tuple[int, Optional[str], Optional[Any]]]):
    """A native stream whose tasks' messages and progress go to callbacks,
    called on the thread iterating it, each before the result of the input
    that sent it. A message that is not JSON (a hostile task's) reaches
    ``messages`` as the TaskError saying so."""

    def __init__(self, task: str, stream: Any, messages: Optional[Messages],
                 task_progress: Optional[TaskProgress]) -> None:
        self._task = task
        self._stream = stream
        self._messages = messages
        self._task_progress = task_progress
        # Events taken from the stream and not yet handed to a callback:
        # a callback that raises leaves the rest here for the next call.
        self._pending: Deque[Tuple[str, int, Any, Any]] = collections.deque()

    def __iter__(self) -> "_Listened":
        return self

    def __next__(self) -> Tuple[int, Optional[str], Optional[Any]]:
        while True:
            while self._pending:
                self._dispatch(*self._pending.popleft())
            index, text, error = next(self._stream)
            if index is not None:
                return index, text, error
            self._pending.extend(self._stream.events())

    def _dispatch(self, kind: str, index: int, first: Any, second: Any) -> None:
        if kind == "progress":
            if self._task_progress is not None:
                self._task_progress(index, first, second)
        elif self._messages is not None:
            if second is None:
                try:
                    message = _args.loads(first)
                except (ValueError, RecursionError) as e:
                    second = _args.unreadable_result(self._task, index, e, what="message")
                else:
                    self._messages(index, message)
                    return
            self._messages(index, second)

    def cancel(self) -> None:
        self._stream.cancel()


def _collect(task: str, stream: Any, pending: Dict[int, Any], total: Optional[int], progress: Optional[Progress],
             *, raise_first: bool) -> List[Any]:
    """Every input's outcome, in input order: the first error raised if
    ``raise_first`` (the inputs not yet run are skipped), else returned in
    its input's place. The stream is cancelled on the way out."""
    outcomes: Dict[int, Any] = {}
    try:
        for index, text, error in stream:
            outcome, failed = _outcome(task, pending, index, text, error)
            if raise_first and failed:
                raise outcome
            outcomes[index] = outcome
            if progress is not None:
                progress(len(outcomes), total)
    finally:
        stream.cancel()
    return [outcomes[i] for i in range(len(outcomes))]


class _Inputs:
    """A map's inputs as JSON texts, keeping each input's Python value until
    its result is taken (for the ``input`` of its error); the map pulls at
    most a bounded window ahead, so this stays small."""

    def __init__(self, items: Iterable[Any], arity: "_args.Arity", pending: Dict[int, Any]) -> None:
        self._items = iter(items)
        self._arity = arity
        self._pending = pending
        self._index = 0

    def __iter__(self) -> "_Inputs":
        return self

    def __next__(self) -> str:
        item = next(self._items)
        index = self._index
        self._index += 1
        self._pending[index] = item
        try:
            return _args.encode_item(item, self._arity)
        except (TypeError, ValueError) as e:
            raise TypeError(f"input {index} ({item!r:.80}): {e}") from None


class Pool:
    """A pool of workers running the tasks of one WebAssembly module.

    ``module`` is the path of a ``.wasm`` task module (or its bytes), or of a
    ``.py`` module of tasks written in Python (built into a component with
    componentize-py on first use, then cached; ``Pool(__file__)`` in a
    script that is its own tasks module), or the functions to make tasks
    of: ``Pool([sqrt, pi_hits])`` packs them, with the modules, functions
    and constants they use, into such a module (docs/python.md). Every
    worker loads that same module, so every task exists in every worker,
    whatever the platform or the order things were defined in. Arguments
    and results are copied in and out as JSON: numbers, strings, booleans,
    None, lists, tuples and dicts.

    Settings (all optional):

    - ``workers``: how many (default: one per CPU core);
    - ``processes``: run each worker in its own process (a crashed worker is
      replaced and its task retried ``max_retries`` times) instead of a thread;
    - ``seed``: the pool's seed; each task's random stream derives from it
      and the input's index, so results do not depend on the worker count;
    - ``deadline`` (seconds), ``fuel`` (instructions), ``max_memory``,
      ``max_stack``, ``max_output`` (bytes): the sandbox's limits per task;
    - ``load_deadline`` (seconds, default 5): how long the module's own
      set-up code may take in each new instance (a ``tasks.py``'s top-level
      code, the initializer); past it, the pool fails to start, naming it;
    - ``chunksize``: inputs per dispatch (default: chosen per map);
    - ``interruptible`` (default True): thread workers can stop a running
      task when its map is cancelled or Ctrl-C is pressed (the cost: tight
      loops run somewhat slower; worker processes are killed instead and
      pay nothing);
    - ``cache_dir``, ``cache``: where compiled modules are kept, or no cache;
    - ``allow_wall_clock`` (``time.time()``), ``allow_monotonic_clock``
      (``time.monotonic()``, ``time.sleep()``): grant a clock to tasks that
      use WASI (tasks written in Python, Rust tasks built for
      ``wasm32-wasip1``); a task using one not granted raises
      :class:`~wasmpool.errors.NotGranted`. Nothing else (files, network,
      environment) is granted;
    - ``fresh_state`` (default True): each input starts from the module's
      initial state, so no input sees another's changes to module globals.
      ``fresh_state=False``: each worker keeps one instance and runs all
      its inputs in it, globals carrying over from input to input on that
      worker (an instance whose task trapped is replaced). Much cheaper per
      call for fine-grained tasks written in Python; ``random`` is still
      seeded per input.

    Use it in a ``with`` block, or call :meth:`close`.
    """

    def __init__(
        self,
        module: ModuleSource,
        *,
        workers: Optional[int] = None,
        processes: bool = False,
        seed: Optional[int] = None,
        deadline: Optional[float] = None,
        load_deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        max_memory: Optional[int] = None,
        max_stack: Optional[int] = None,
        max_output: Optional[int] = None,
        chunksize: Optional[int] = None,
        interruptible: bool = True,
        max_retries: Optional[int] = None,
        cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        cache: bool = True,
        allow_wall_clock: bool = False,
        allow_monotonic_clock: bool = False,
        fresh_state: bool = True,
        initializer: Optional[str] = None,
        initargs: Iterable[Any] = (),
        canonicalize_nans: bool = True,
    ) -> None:
        if isinstance(module, (int, float)) and not isinstance(module, bool):
            raise TypeError(
                f"Pool's first argument is the tasks (a .wasm or .py file, or the functions), not {module!r}: "
                f"for {module} workers, Pool('tasks.py', workers={module})"
            )
        init = None
        if initializer is not None:
            if not isinstance(initializer, str):
                raise TypeError(
                    f"initializer names a task of the module (a str), not a {type(initializer).__name__}: "
                    "the init code must be in the module, as every task is"
                )
            try:
                init = (initializer, _args.dumps(list(initargs)))
            except (TypeError, ValueError) as e:
                raise TypeError(f"initargs: {e}") from None
        self._tasks_file: Optional[str] = None
        # Inline tasks: the functions given, by name (`_inline.pack`).
        self._inline: Dict[str, Callable[..., Any]] = {}
        if callable(module) or (isinstance(module, (list, tuple)) and module and all(map(callable, module))):
            from . import _build, _inline

            try:
                text, self._inline = _inline.pack([module] if callable(module) else list(module))
            except TypeError as e:
                raise TypeError(f"cannot make tasks of these functions: {e}") from None
            source: Any = os.fspath(_build.build_inline(text))
            self._module_name = "the functions " + ", ".join(self._inline)
        elif isinstance(module, (bytes, bytearray, memoryview)):
            source = bytes(module)
            self._module_name = "a module given as bytes"
        else:
            source = os.fspath(module)
            self._module_name = str(source)
            if str(source).endswith(".py"):
                self._tasks_file = os.path.realpath(source)
                # Tasks written in Python: built once into a component, cached.
                from . import _build

                source = os.fspath(_build.build(source))
        self._native = NativePool(
            source,
            workers=workers,
            seed=seed,
            worker_command=_worker_command() if processes else None,
            max_retries=max_retries,
            deadline=deadline,
            load_deadline=load_deadline,
            fuel=fuel,
            max_memory=max_memory,
            max_stack=max_stack,
            max_output=max_output,
            chunk_size=chunksize,
            interruptible=interruptible,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            cache=cache,
            allow_wall_clock=allow_wall_clock,
            allow_monotonic_clock=allow_monotonic_clock,
            fresh_state=fresh_state,
            init=init,
            canonicalize_nans=canonicalize_nans,
        )
        self._tasks = {t["name"]: t for t in self._native.tasks()}
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._executor_lock = threading.Lock()

    # -- the module -------------------------------------------------------

    def tasks(self) -> List[Task]:
        """The module's tasks, in the module's order."""
        return [Task(t["name"], tuple(map(tuple, t["params"])), t["result"], t["doc"]) for t in self._native.tasks()]

    @property
    def workers(self) -> int:
        """How many workers the pool has."""
        return self._native.workers()

    @property
    def seed(self) -> int:
        """The pool's seed: the one given, or the one drawn (pass it back as
        ``seed=`` to run the same tasks on the same random numbers)."""
        return self._native.seed()

    @property
    def worker_kind(self) -> str:
        """``"threads"`` or ``"processes"``."""
        return self._native.worker_kind()

    def worker_pids(self) -> List[Optional[int]]:
        """Worker processes: each worker's process id (empty for threads)."""
        return self._native.worker_pids()

    def stats(self) -> PoolStats:
        """What each worker has done so far."""
        return PoolStats([WorkerStats(w["tasks"], w["busy"], w["retries"]) for w in self._native.stats()])

    # -- calls -------------------------------------------------------------

    def _task_name(self, task: "TaskRef") -> str:
        """A task's name: ``task`` itself, or the name of a function of the
        pool's own tasks file (``pool.map(sqrt, xs)`` in a script that is
        its own tasks module, or ``pool.map(tasks.sqrt, xs)``)."""
        if isinstance(task, str):
            return task
        name = getattr(task, "__name__", None)
        code = getattr(task, "__code__", None)
        if not callable(task) or not isinstance(name, str):
            raise TypeError(f"a task is named by a str (such as 'sqrt'), not a {type(task).__name__}")
        if self._inline.get(name) is task:
            return name
        if self._tasks_file is not None and code is not None and _same_file(code.co_filename, self._tasks_file):
            if name in self._tasks:
                return name
            raise TypeError(
                f"{name} is a function of {self._tasks_file} but not one of its tasks: every public function "
                "defined at the top of the module is a task (not one whose name starts with _, nor a nested "
                "or decorated-away one)"
            )
        where = f" ({code.co_filename})" if code is not None else ""
        raise TypeError(
            f"{name}{where} is a function of this program, which the workers do not have: they run the "
            f"tasks of the pool's module only ({self._module_name}); name one of them, as in "
            f"pool.map({next(iter(self._tasks), 'task')!r}, inputs)"
        )

    def _arity(self, task: str) -> "_args.Arity":
        info = self._tasks.get(task)
        # An unknown name: the native call reports it, with suggestions.
        return (info["required"], info["most"]) if info is not None else (1, 1)

    def _stream(
        self,
        task: str,
        iterable: Iterable[Any],
        *,
        ordered: bool,
        chunksize: Optional[int],
        deadline: Optional[float],
        fuel: Optional[int],
        seed: Optional[int],
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> Tuple[Any, Dict[int, Any], Optional[int]]:
        total = operator.length_hint(iterable, -1)
        pending: Dict[int, Any] = {}
        inputs = _Inputs(iterable, self._arity(task), pending)
        listen = messages is not None or task_progress is not None
        stream = self._native.stream(
            task, inputs, ordered=ordered, chunk_size=chunksize, deadline=deadline, fuel=fuel, seed=seed,
            listen=listen,
        )
        if listen:
            stream = _Listened(task, stream, messages, task_progress)
        return stream, pending, (total if total >= 0 and hasattr(iterable, "__len__") else None)

    def call(self, task: TaskRef, *args: Any, deadline: Optional[float] = None, fuel: Optional[int] = None,
             seed: Optional[int] = None, messages: Optional[Messages] = None,
             task_progress: Optional[TaskProgress] = None) -> Any:
        """Runs ``task(*args)`` once on a worker and returns its result
        (``messages`` and ``task_progress`` as for :meth:`map`)."""
        task = self._task_name(task)
        text = _args.encode_call(args, self._arity(task))
        listen = messages is not None or task_progress is not None
        stream = self._native.stream(task, iter([text]), deadline=deadline, fuel=fuel, seed=seed, listen=listen)
        if listen:
            stream = _Listened(task, stream, messages, task_progress)
        try:
            for index, result, error in stream:
                pending = {index: args[0] if len(args) == 1 else args}
                outcome, failed = _outcome(task, pending, index, result, error)
                if failed:
                    raise outcome
                return outcome
        finally:
            stream.cancel()
        raise AssertionError("a call yields one result")  # pragma: no cover

    def map(
        self,
        task: TaskRef,
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        *,
        progress: Optional[Progress] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> List[Any]:
        """Runs ``task`` on every input and returns the results in input
        order. An input is a task's argument, or a tuple of its arguments
        for a task of several. The first failure stops the map (inputs not
        yet run are skipped) and is raised. ``progress(done, total)`` is
        called after each result (``total`` is None for inputs of unknown
        length).

        What the tasks send while they run (``wasmpool.send(message)`` and
        ``wasmpool.progress(done, total)`` in a task written in Python, a
        ``Sender`` and ``progress`` in a Rust task) goes to
        ``messages(index, message)`` and ``task_progress(index, done,
        total)``, where ``index`` is the input's: called on this thread, in
        the order sent, each before its input's result. Without them it is
        dropped. A task sending faster than they return waits for room."""
        task = self._task_name(task)
        stream, pending, total = self._stream(
            task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel, seed=seed,
            messages=messages, task_progress=task_progress,
        )
        return _collect(task, stream, pending, total, progress, raise_first=True)

    def starmap(
        self,
        task: TaskRef,
        iterable: Iterable[Iterable[Any]],
        chunksize: Optional[int] = None,
        *,
        progress: Optional[Progress] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> List[Any]:
        """Like :meth:`map`, with every input an iterable of the task's
        arguments, as ``multiprocessing.Pool.starmap``: ``starmap("add",
        [(1, 2), (3, 4)])`` runs ``add(1, 2)`` and ``add(3, 4)``.
        (:meth:`map` takes a tuple as several arguments already.)"""
        task = self._task_name(task)
        single = self._arity(task)[1] == 1

        def spread(args: Iterable[Any]) -> Any:
            args = tuple(args)
            return args[0] if single and len(args) == 1 else args

        return self.map(task, map(spread, iterable), chunksize, progress=progress, deadline=deadline, fuel=fuel,
                        seed=seed, messages=messages, task_progress=task_progress)

    def map_each(
        self,
        task: TaskRef,
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        *,
        progress: Optional[Progress] = None,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> List[Any]:
        """Like :meth:`map`, but every input gets its own outcome: its result,
        or the :class:`~wasmpool.errors.TaskError` it failed with (returned,
        not raised), so one bad input loses nothing else."""
        task = self._task_name(task)
        stream, pending, total = self._stream(
            task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel, seed=seed,
            messages=messages, task_progress=task_progress,
        )
        return _collect(task, stream, pending, total, progress, raise_first=False)

    def imap(
        self,
        task: TaskRef,
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        *,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> MapIterator:
        """A lazy :meth:`map`: results in input order as they are ready,
        pulling inputs only as workers have room, so an endless generator
        streams through in bounded memory. ``messages`` and
        ``task_progress`` as for :meth:`map`, called while iterating."""
        task = self._task_name(task)
        stream, pending, total = self._stream(
            task, iterable, ordered=True, chunksize=chunksize, deadline=deadline, fuel=fuel, seed=seed,
            messages=messages, task_progress=task_progress,
        )
        return MapIterator(task, stream, pending, total, with_index=False)

    def imap_unordered(
        self,
        task: TaskRef,
        iterable: Iterable[Any],
        chunksize: Optional[int] = None,
        *,
        with_index: bool = False,
        deadline: Optional[float] = None,
        fuel: Optional[int] = None,
        seed: Optional[int] = None,
        messages: Optional[Messages] = None,
        task_progress: Optional[TaskProgress] = None,
    ) -> MapIterator:
        """Like :meth:`imap`, with results in the order they finish;
        ``with_index=True`` yields ``(input index, result)`` pairs."""
        task = self._task_name(task)
        stream, pending, total = self._stream(
            task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel, seed=seed,
            messages=messages, task_progress=task_progress,
        )
        return MapIterator(task, stream, pending, total, with_index=with_index)

    def submit(self, task: TaskRef, *args: Any, **options: Any) -> "concurrent.futures.Future[Any]":
        """Starts ``task(*args)`` and returns a
        :class:`concurrent.futures.Future` of its result (``options`` as
        for :meth:`call`). The calls wait on a few Python threads of the
        pool's own, with the interpreter released."""
        task = self._task_name(task)
        with self._executor_lock:
            if self._executor is None:
                self._native.workers()  # a closed pool raises PoolClosed here
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(4, 2 * self.workers), thread_name_prefix="wasmpool-submit"
                )
            executor = self._executor
        return executor.submit(self.call, task, *args, **options)

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Closes the pool: its workers stop (worker processes are killed)
        once the maps still running on it are done. Further calls raise
        :class:`~wasmpool.errors.PoolClosed`."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._native.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native.closed

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<wasmpool.Pool closed>"
        return f"<wasmpool.Pool {self.workers} {self.worker_kind}, {len(self._tasks)} tasks, seed {self.seed}>"
