"""wasmpool, as a task written in Python sees it.

Built into the component as the module ``wasmpool`` (see componentize.py):
inside a task, ``from wasmpool import send, progress`` reaches the host
that runs the task, as a Rust task's ``Sender`` and ``progress`` do. The
package of the same name that builds pools lives outside the sandbox and
is not in the component: only these three names are.

- ``send(message)``: sends ``message`` (any value JSON can hold) to the
  program that runs the task, while the task goes on. It arrives there as
  the ``messages`` callback of ``Pool.map`` and the like, or as an
  ``Exchange`` event in Rust. A message nobody listens to is dropped. A
  message longer than the pool's ``max_message`` stops the task.
- ``progress(done, total)``: reports how far the task has got, in its own
  units (whole numbers from 0 to 2**64 - 1).
- ``task_seed()``: the running input's seed, the one ``random`` is seeded
  with before the input runs.
"""
import json

from wit_world.imports import host

__all__ = ["send", "progress", "task_seed"]

_U64 = 1 << 64


def send(message):
    """Sends ``message`` (a value JSON can hold) to the program running the
    task. Raises ``TypeError`` or ``ValueError`` for a value JSON cannot
    hold (a set, NaN, ...)."""
    host.send(json.dumps(message, allow_nan=False, separators=(",", ":")))


def progress(done, total):
    """Reports ``done`` units of work out of ``total``."""
    for name, value in (("done", done), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
            raise ValueError(f"progress: {name} must be a whole number from 0 to 2**64 - 1, not {value!r}")
    host.progress(done, total)


def task_seed():
    """The running input's seed (a whole number below 2**64)."""
    return host.task_seed()


# The public names of the package that runs tasks (wasmpool/__init__.py's
# `__all__` but for the three above; python/tests/test_one_file.py keeps
# the two lists equal). A script that is its own tasks module imports them
# at its top (`from wasmpool import Pool`) and runs in the sandbox too.
_HOST_ONLY = ("Pool", "Executor", "Task", "PoolStats", "WorkerStats", "MapIterator", "TaskError", "WasmpoolError", "errors",
              "Exchange", "Event", "Message", "Progress", "Finished")


class HostOnly(BaseException):
    """Raised inside the sandbox by any use of the package's host side
    (``Pool(...)``, ...). A BaseException, so that ``except Exception`` in
    the user's code lets it through: the runner skips the top-level
    statement that raised it (see ``wasmpool_runner._run_module``)."""


class _HostOnlyName:
    """What ``wasmpool.Pool`` and the other host-only names are inside the
    sandbox: importable, so that a script that defines its tasks and maps
    them is also a tasks module, and raising ``HostOnly`` when used."""

    def __init__(self, name):
        self._name = name

    def _refuse(self, *args, **kwargs):
        raise HostOnly(
            f"wasmpool.{self._name} belongs to the program that runs the tasks, outside the sandbox; "
            f"inside a task, wasmpool offers only {', '.join(__all__)}"
        )

    __call__ = __enter__ = __iter__ = _refuse

    def __getattr__(self, name):
        if name.startswith("_"):
            # Probes (`hasattr(Pool, "__wrapped__")`, typing, copy) get
            # the answer Python expects of a missing attribute.
            raise AttributeError(name)
        self._refuse()

    def __repr__(self):
        return f"<wasmpool.{self._name}: not inside a task>"


def __getattr__(name):
    if name in _HOST_ONLY:
        return _HostOnlyName(name)
    raise AttributeError(
        f"inside a task, wasmpool offers only {', '.join(__all__)}; wasmpool.{name} belongs to the "
        "program that runs the tasks, outside the sandbox"
    )
