"""Arguments in, results out: Python values as the JSON a task's entry
point takes, the way docs/abi.md describes it (one argument as itself,
several as an array, none as ``null``)."""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence, Tuple


def _default(value: Any) -> Any:
    """What ``json`` cannot encode by itself: bytes as lists of numbers
    (a task's ``Vec<u8>``), and array-likes with ``tolist`` (numpy)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(
        f"a {type(value).__name__} cannot be a task's argument: arguments are "
        "numbers, strings, booleans, None, and lists, tuples and dicts of them"
    )


def dumps(value: Any) -> str:
    """One value as compact JSON text."""
    return json.dumps(value, default=_default, separators=(",", ":"))


# How many arguments a task takes: (required, most), most None for `*args`
# (`TaskInfo::arity` in the library).
Arity = Tuple[int, Optional[int]]


def encode_item(item: Any, arity: Arity) -> str:
    """One input of a map: for a task of several parameters, a tuple of
    its arguments (or, if it needs at least two, a list); for one, the
    argument itself. A task that can take one argument or more
    (`scaled(x, factor=10)`, `f(*xs)`) gets anything but a tuple wrapped
    as the one argument, so that a list stays one argument whatever its
    length."""
    required, most = arity
    if most == 0 and (item is None or item == ()):
        return "null"
    several = most is None or most >= 2
    if several and isinstance(item, tuple):
        return dumps(list(item))
    if several and required <= 1:
        return dumps([item])
    return dumps(item)


def encode_call(args: Sequence[Any], arity: Arity) -> str:
    """The arguments of ``call(task, *args)``."""
    required, most = arity
    if most == 1 and len(args) == 1:
        return dumps(args[0])
    if most == 0 and not args:
        return "null"
    return dumps(list(args))


def loads(text: str) -> Any:
    """A result's JSON text as a Python value."""
    return json.loads(text)


def unreadable_result(task: str, index: int, cause: BaseException, what: str = "result") -> Any:
    """The error of an input whose result (or message) JSON this Python
    cannot read (nested past its recursion limit, an integer over its digit
    limit)."""
    from .errors import BadResult

    reason = f"the {what} could not be read as a Python value: {cause}"
    return BadResult(f"task `{task}` (input #{index}): {reason}", task=task, index=index,
                     kind="bad_result", reason=reason)
