"""JSON helpers of the Python layer. A map's arguments and results are
converted in the extension (python/src/values.rs), with the same rules
as ``json``; this keeps what the rest of the package needs: ``dumps``
(the init task's arguments), the arity type, and the error of a result
this Python cannot read."""

from __future__ import annotations

from typing import Any, Optional, Tuple


def dumps(value: Any) -> str:
    """One value as compact JSON text, as a map's arguments are encoded
    (bytes as lists of numbers, array-likes by their ``tolist``)."""
    from ._native import dumps as native_dumps

    return native_dumps(value)


# How many arguments a task takes: (required, most), most None for `*args`
# (`TaskInfo::arity` in the library).
Arity = Tuple[int, Optional[int]]


def unreadable_result(task: str, index: int, cause: BaseException, what: str = "result") -> Any:
    """The error of an input whose result (or message) JSON this Python
    cannot read (nested past its recursion limit, an integer over its digit
    limit)."""
    from .errors import BadResult

    reason = f"the {what} could not be read as a Python value: {cause}"
    return BadResult(f"task `{task}` (input #{index}): {reason}", task=task, index=index,
                     kind="bad_result", reason=reason)
