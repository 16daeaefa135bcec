"""``send``, ``progress`` and ``task_seed`` outside a task.

Inside a task written in Python these reach the host (the component holds
its own module ``wasmpool``: _build/wasmpool_in_task.py). Here, in the
program itself, a ``tasks.py`` imported and called directly (to try a
function, or in a unit test) finds them too: ``send`` and ``progress``
check their arguments as inside a task and go nowhere, and ``task_seed``
raises, since no input is running.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["send", "progress", "task_seed"]

_U64 = 1 << 64


def send(message: Any) -> None:
    """Inside a task: sends ``message`` (a value JSON can hold) to the
    program running it. Here: checks it can be sent, and drops it."""
    json.dumps(message, allow_nan=False)


def progress(done: int, total: int) -> None:
    """Inside a task: reports ``done`` units of work out of ``total``.
    Here: checks the numbers, and does nothing."""
    for name, value in (("done", done), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
            raise ValueError(f"progress: {name} must be a whole number from 0 to 2**64 - 1, not {value!r}")


def task_seed() -> int:
    """Inside a task: the running input's seed. Here: raises RuntimeError."""
    raise RuntimeError("task_seed() has a value only inside a task, while an input runs")
