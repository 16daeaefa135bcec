"""The pool: the Python face of the Rust library's ``wasmpool::Pool``."""

from __future__ import annotations

import concurrent.futures
import operator
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _args
from . import _native
from ._native import NativePool
from ._events import Exchange
from ._settings import FolderGrant, env_grants, folder_grants
from .errors import TaskError

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


def _package_names(packages: Optional[Sequence[str]]) -> List[str]:
    """``packages=``: names of installed packages (a list, not one string;
    None for none)."""
    if packages is None:
        return []
    if isinstance(packages, str):
        raise TypeError(f"packages takes a list of names, not one: packages=[{packages!r}]")
    names = list(packages)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"packages: each entry is a package's name (a str), not {name!r}")
    return names


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


# The results of `imap` and `imap_unordered`: the native stream
# (python/src/stream.rs), which turns results into Python values and
# calls the message and progress callbacks without Python-level code per
# input.
MapIterator = _native.MapIterator


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

    Settings (all optional; the same settings, names and defaults as the
    command's options: ``max_memory=`` is ``--max-memory``):

    - ``workers``: how many (default: one per CPU core);
    - ``processes``: run each worker in its own process (a crashed worker is
      replaced and its task retried ``max_retries`` times, default 2)
      instead of a thread;
    - ``seed``: the pool's seed; each task's random stream derives from it
      and the input's index, so results do not depend on the worker count;
    - ``chunk_size``: inputs per dispatch (default: chosen per map);
    - ``deadline`` (seconds), ``fuel`` (instructions), ``max_memory``,
      ``max_stack``, ``max_output``, ``max_message`` (bytes),
      ``max_table_elements``: the sandbox's limits per task;
    - ``load_deadline`` (seconds, default 5): how long the module's own
      set-up code may take in each new instance (a ``tasks.py``'s top-level
      code, the initializer); past it, the pool fails to start, naming it;
      ``max_module_size`` (bytes, default 64 MiB): a larger module is
      refused before it is compiled;
    - ``interruptible`` (default: on): thread workers can stop a running
      task when its map is cancelled or Ctrl-C is pressed (the cost: tight
      loops run somewhat slower; worker processes are killed instead and
      pay nothing);
    - ``fresh_state`` (default True): each input starts from the module's
      initial state, so no input sees another's changes to module globals.
      ``fresh_state=False``: each worker keeps one instance and runs all
      its inputs in it, globals carrying over from input to input on that
      worker (an instance whose task trapped is replaced). Much cheaper per
      call for fine-grained tasks written in Python; ``random`` is still
      seeded per input;
    - ``canonicalize_nans`` (default True): NaNs have the same bits on
      every machine;
    - ``cache``, ``cache_dir``: where compiled modules are kept, or no cache;
    - ``initializer``, ``initargs``: a task run on every new instance first;
    - what tasks that use WASI (tasks written in Python, Rust tasks built
      for ``wasm32-wasip1``) may use beyond computing, nothing by default:
      ``allow_wall_clock`` (``time.time()``), ``allow_monotonic_clock``
      (``time.monotonic()``, ``time.sleep()``), ``allow_env`` (a dict of
      names to values, or names whose value this process has),
      ``allow_dir`` and ``allow_write_dir`` (folders to read, or to read
      and write: paths, or pairs ``(path, where tasks see it)``). A task
      using a clock not granted raises :class:`~wasmpool.errors.NotGranted`.

    A setting that cannot work raises :class:`~wasmpool.errors.ConfigError`
    (``TypeError`` for a value of the wrong type), whose ``.setting`` names
    it.

    Use it in a ``with`` block, or call :meth:`close`.
    """

    def __init__(
        self,
        module: ModuleSource,
        *,
        workers: Optional[int] = None,
        processes: bool = False,
        max_retries: Optional[int] = 2,
        seed: Optional[int] = None,
        chunk_size: Optional[int] = None,
        deadline: Optional[float] = None,
        load_deadline: Optional[float] = 5.0,
        fuel: Optional[int] = None,
        max_memory: Optional[int] = 256 * 2**20,
        max_stack: Optional[int] = 512 * 2**10,
        max_output: Optional[int] = 64 * 2**20,
        max_table_elements: Optional[int] = 100_000,
        max_message: Optional[int] = 2**20,
        max_module_size: Optional[int] = 64 * 2**20,
        interruptible: Optional[bool] = None,
        fresh_state: bool = True,
        canonicalize_nans: bool = True,
        cache: bool = True,
        cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        initializer: Optional[str] = None,
        initargs: Optional[Iterable[Any]] = (),
        allow_env: Union[Iterable[str], Mapping[str, str], None] = (),
        allow_dir: Optional[Iterable[FolderGrant]] = (),
        allow_write_dir: Optional[Iterable[FolderGrant]] = (),
        allow_wall_clock: bool = False,
        allow_monotonic_clock: bool = False,
        packages: Optional[Sequence[str]] = (),
    ) -> None:
        if isinstance(module, (int, float)) and not isinstance(module, bool):
            raise TypeError(
                f"Pool's first argument is the tasks (a .wasm or .py file, or the functions), not {module!r}: "
                f"for {module} workers, Pool('tasks.py', workers={module})"
            )
        if initializer is not None and not isinstance(initializer, str):
            raise TypeError(
                f"initializer names a task of the module (a str), not a {type(initializer).__name__}: "
                "the init code must be in the module, as every task is"
            )
        try:
            initargs_json = _args.dumps(list(initargs or ()))
        except (TypeError, ValueError) as e:
            raise TypeError(f"initargs: {e}") from None
        # Every setting by its name in the library's `Settings`, which the
        # command's options share (python/tests/test_settings.py).
        settings = dict(
            workers=workers,
            processes=processes,
            max_retries=max_retries,
            seed=seed,
            chunk_size=chunk_size,
            deadline=deadline,
            load_deadline=load_deadline,
            fuel=fuel,
            max_memory=max_memory,
            max_stack=max_stack,
            max_output=max_output,
            max_table_elements=max_table_elements,
            max_message=max_message,
            max_module_size=max_module_size,
            # Python's choice when none is made: Ctrl-C stops running tasks.
            interruptible=True if interruptible is None else interruptible,
            fresh_state=fresh_state,
            canonicalize_nans=canonicalize_nans,
            cache=cache,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            initializer=initializer,
            initargs=initargs_json,
            allow_env=env_grants(allow_env),
            allow_dir=folder_grants("allow_dir", allow_dir),
            allow_write_dir=folder_grants("allow_write_dir", allow_write_dir),
            allow_wall_clock=allow_wall_clock,
            allow_monotonic_clock=allow_monotonic_clock,
        )
        if packages and not (isinstance(module, (str, os.PathLike)) and os.fspath(module).endswith(".py")):
            raise ValueError("packages are carried into tasks written in Python, in a .py module: "
                             f"not into {module!r}")
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
        elif isinstance(module, (str, os.PathLike)):
            source = os.fspath(module)
            self._module_name = str(source)
            if str(source).endswith(".py"):
                self._tasks_file = os.path.realpath(source)
                # Tasks written in Python: built once into a component, cached.
                from . import _build

                source = os.fspath(_build.build(source, packages=_package_names(packages)))
        else:
            raise TypeError(
                "Pool's first argument is the tasks: the path of a .wasm or .py file, a module's bytes, "
                f"or the functions to make tasks of, not a {type(module).__name__}"
            )
        # None is the default of every setting, as it was when each went
        # to the builder on its own.
        settings = {name: value for name, value in settings.items() if value is not None}
        try:
            settings_json = _args.dumps(settings)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Pool's settings: {e}") from None
        self._native = NativePool(source, settings_json, _worker_command() if processes else None)
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
        with_index: bool = False,
    ) -> MapIterator:
        total = operator.length_hint(iterable, -1)
        return self._native.stream(
            task, iterable, arity=self._arity(task),
            total=total if total >= 0 and hasattr(iterable, "__len__") else None,
            ordered=ordered, chunk_size=chunksize, deadline=deadline, fuel=fuel, seed=seed, with_index=with_index,
            messages=messages, task_progress=task_progress,
        )

    def call(self, task: TaskRef, *args: Any, deadline: Optional[float] = None, fuel: Optional[int] = None,
             seed: Optional[int] = None, messages: Optional[Messages] = None,
             task_progress: Optional[TaskProgress] = None) -> Any:
        """Runs ``task(*args)`` once on a worker and returns its result
        (``messages`` and ``task_progress`` as for :meth:`map`)."""
        task = self._task_name(task)
        most = self._arity(task)[1]
        # One input: the argument itself for a task of one, else the tuple.
        item = args[0] if most == 1 and len(args) == 1 else args
        stream = self._stream(task, [item], ordered=True, chunksize=None, deadline=deadline, fuel=fuel, seed=seed,
                              messages=messages, task_progress=task_progress)
        try:
            return stream._collect()[0]
        except TaskError as error:
            # The call's input as the caller wrote it: its one argument, or all.
            error.input = args[0] if len(args) == 1 else args
            raise

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
        stream = self._stream(task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel,
                              seed=seed, messages=messages, task_progress=task_progress)
        return stream._collect(progress, raise_first=True)

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
        stream = self._stream(task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel,
                              seed=seed, messages=messages, task_progress=task_progress)
        return stream._collect(progress, raise_first=False)

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
        return self._stream(task, iterable, ordered=True, chunksize=chunksize, deadline=deadline, fuel=fuel,
                            seed=seed, messages=messages, task_progress=task_progress)

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
        return self._stream(task, iterable, ordered=False, chunksize=chunksize, deadline=deadline, fuel=fuel,
                            seed=seed, messages=messages, task_progress=task_progress, with_index=with_index)

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

    def exchange(self, capacity: int = 64) -> "Exchange":
        """An exchange: start tasks on it, then iterate over their messages,
        progress reports and results as they arrive, from all of them at
        once (``wasmpool.Message``, ``wasmpool.Progress``,
        ``wasmpool.Finished``), as pprocess's ``Exchange``. It holds at most
        ``capacity`` events not yet taken: a task sending more waits for
        room (up to its deadline), so memory stays bounded. Leaving its
        ``with`` block (or :meth:`Exchange.close`) cancels the unfinished
        tasks. See docs/python.md, "An exchange"."""
        return Exchange(self, self._native.exchange(capacity))

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
