"""The exceptions wasmpool raises.

Everything derives from :class:`WasmpoolError`. A task that failed raises a
:class:`TaskError` (or, in ``map_each``, returns one in its input's place),
which names the task, the input's index and the input itself; its subclass
says how it failed. Messages come from the Rust library, with any text the
guest wrote escaped for a terminal.

    WasmpoolError
    ├── ModuleLoadError      the module cannot be read or is not a task module
    ├── ConfigError          a setting cannot work (also a ValueError)
    ├── NoSuchTask           no task of that name (also a LookupError)
    ├── NoJsonEntry          the task cannot be called from Python
    ├── PoolClosed           a call on a closed pool
    ├── PoolError            the pool could not start (threads, processes, engine)
    └── TaskError            one task call failed: .task, .index, .input, .kind
        ├── InvalidInput     the input is not the task's arguments
        ├── BadArguments     the task's types refused the arguments
        ├── BadResult        the result could not be read
        ├── TaskPanicked     the task panicked: .location, .exception
        ├── TaskTrapped      the Wasm code trapped: .frames (the Wasm backtrace)
        ├── TaskFailed       the task returned an error
        ├── LimitExceeded    a sandbox limit stopped it: .limit ("deadline", "fuel", ...)
        ├── WorkerCrashed    its worker process died on every try
        ├── ModuleFailure    the module failed around the task
        ├── TaskCancelled    cancelled, or the pool closed first
        ├── RankLost         cluster mode: the rank holding it was lost
        └── NotGranted       it used a capability the pool does not grant
"""

from __future__ import annotations

from typing import Any, List, Optional

__all__ = [
    "WasmpoolError",
    "ModuleLoadError",
    "ConfigError",
    "BuildError",
    "NoSuchTask",
    "NoJsonEntry",
    "PoolClosed",
    "PoolError",
    "TaskError",
    "InvalidInput",
    "BadArguments",
    "BadResult",
    "TaskPanicked",
    "TaskTrapped",
    "TaskFailed",
    "LimitExceeded",
    "WorkerCrashed",
    "ModuleFailure",
    "TaskCancelled",
    "RankLost",
    "NotGranted",
]


class WasmpoolError(Exception):
    """Base class of every wasmpool error."""

    def __init__(self, message: str, **attributes: Any) -> None:
        super().__init__(message)
        for name, value in attributes.items():
            setattr(self, name, value)

    @property
    def message(self) -> str:
        """The error's message."""
        return str(self.args[0]) if self.args else ""


class ModuleLoadError(WasmpoolError):
    """The module cannot be read, or is not a usable task module."""

    path: Optional[str] = None


class BuildError(WasmpoolError):
    """A module of tasks written in Python could not be built into a component."""

    def __init__(self, message: str) -> None:
        # The build's output quotes the user's source: keep lines and tabs,
        # drop other control characters before it reaches a terminal.
        clean = "".join(c if c in "\n\t" or c.isprintable() else "\ufffd" for c in message)
        super().__init__(clean)


class ConfigError(WasmpoolError, ValueError):
    """A pool or call setting that cannot work."""


class NoSuchTask(WasmpoolError, LookupError):
    """The module has no task of that name; the message suggests close names."""

    task: str = ""
    available: List[str] = []

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return self.message


class NoJsonEntry(WasmpoolError):
    """The task has no JSON entry point (its module was built without the
    guest SDK's ``json`` feature), so Python cannot call it."""


class PoolClosed(WasmpoolError):
    """A call on a pool that was closed."""


class PoolError(WasmpoolError):
    """The pool could not start or serve: a thread, a worker process, the engine."""


_MISSING: Any = object()


class TaskError(WasmpoolError):
    """One task call failed.

    Attributes: ``task`` (its name), ``index`` (the input's position in its
    map; 0 for ``call``), ``input`` (the arguments given, where known),
    ``kind`` (a stable name such as ``"panic"`` or ``"limit"``) and
    ``reason`` (the failure without the task and index).
    """

    task: str = ""
    index: int = 0
    kind: str = ""
    reason: str = ""

    def __init__(self, message: str, **attributes: Any) -> None:
        self.input = _MISSING
        super().__init__(message, **attributes)

    @property
    def has_input(self) -> bool:
        """Whether ``input`` holds the arguments of the failed call."""
        return self.input is not _MISSING

    def __str__(self) -> str:
        if self.input is _MISSING:
            return self.message
        shown = repr(self.input)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        return f"{self.message}\n  input: {shown}"


class InvalidInput(TaskError):
    """The input is not the task's arguments (for example, two values for a
    task of three parameters); found before the task ran."""


class BadArguments(TaskError):
    """The task's parameter types refused the arguments."""


class BadResult(TaskError):
    """The task's result could not be read."""


class TaskPanicked(TaskError):
    """The task panicked; ``location`` is ``file:line:column`` in its source.
    For a task written in Python, ``location`` is ``file.py:line`` and
    ``exception`` the type of the exception it raised (``ZeroDivisionError``,
    ``tasks.MyError``); ``""`` for a task written in Rust."""

    location: str = ""
    exception: str = ""


# The classes `TaskPanicked` takes the type of a built-in exception with,
# by its name (`with_python_type`), or None where the two cannot be one
# class (exceptions with fields of their own: OSError, AttributeError...).
_PYTHON_TYPED: "dict[str, Optional[type]]" = {}


def with_python_type(error: Any) -> Any:
    """``error``, or, for a :class:`TaskPanicked` of a task written in
    Python that raised a built-in exception (``ZeroDivisionError``,
    ``ValueError``, ``KeyError``, ...), the same error as an instance of a
    class derived from both, so that ``except ZeroDivisionError`` catches
    it as well as ``except TaskError`` (as ``concurrent.futures`` re-raises
    a worker's own exception). Only built-in names are looked up: the name
    comes from the task."""
    if type(error) is not TaskPanicked:
        return error
    name = error.exception
    if name not in _PYTHON_TYPED:
        import builtins

        builtin = getattr(builtins, name, None) if isinstance(name, str) and name.isidentifier() else None
        typed: Optional[type] = None
        if isinstance(builtin, type) and issubclass(builtin, Exception) and builtin is not Exception:
            try:
                typed = type(name, (TaskPanicked, builtin), {
                    "__module__": __name__,
                    "__doc__": f"A task's {name}: a TaskPanicked and a {name}.",
                    "__str__": TaskError.__str__,
                    "__init__": TaskError.__init__,
                })
            except TypeError:
                typed = None  # a layout of its own: caught as TaskPanicked only
        _PYTHON_TYPED[name] = typed
    typed = _PYTHON_TYPED[name]
    if typed is None:
        return error
    converted = typed(error.message)
    converted.__dict__.update(error.__dict__)
    return converted


class TaskTrapped(TaskError):
    """The Wasm code trapped (for example, an out-of-bounds access or an
    integer division by zero); ``frames`` is the Wasm backtrace, innermost
    first."""

    frames: List[str] = []


class TaskFailed(TaskError):
    """The task returned an error; the message is the task's."""


class LimitExceeded(TaskError):
    """A sandbox limit stopped the task; ``limit`` names the setting
    (``"deadline"``, ``"fuel"``, ``"max_memory"``, ``"max_stack"``,
    ``"max_output"``, ...)."""

    limit: str = ""


class WorkerCrashed(TaskError):
    """The task's worker process died while running it, on every try."""


class ModuleFailure(TaskError):
    """The module failed around the task (no instance could be made, its
    init task failed, or it broke the calling convention)."""


class TaskCancelled(TaskError):
    """The task was cancelled, or the pool closed before it ran."""


class RankLost(TaskError):
    """Cluster mode: the rank holding the input was lost before it answered."""


class NotGranted(TaskError):
    """The task used a capability the pool does not grant (a clock, say),
    and failed on the refusal. ``capability`` is the ``Pool`` keyword that
    grants it (``"allow_wall_clock"`` or ``"allow_monotonic_clock"``)."""

    capability: str = ""
