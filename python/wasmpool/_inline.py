"""Tasks defined where students write them: ``Pool([sqrt, pi_hits])``
packs the given functions, with what they use, into the source of one
tasks module, which is then built like a ``tasks.py`` (cached by content).

What is packed (docs/python.md, "Tasks defined inline"):
- each function given, by its source (``inspect.getsource``), without its
  decorators: it must be a plain function defined at the top of its module
  (a script, a notebook cell), not a lambda and not a closure;
- each module-level name those functions (and their defaults) read,
  resolved in the functions' globals as they are when the pool is made:
  a module becomes an ``import``; a function or class of another module a
  ``from … import``; a function or class of the same module is packed by
  its source, as the given ones are (so it is a task too, if public); a
  constant (``None``, a bool, number, string or bytes, or a tuple, list,
  dict or set of constants; not NaN or infinity) is written as its value.

Anything else is refused with a ``TypeError`` naming the function, the
name and what it is: a live object (an open file, a numpy array, an
instance) cannot be copied into the sandbox, and would not be the same
object there anyway; pass it as an argument instead.
"""

from __future__ import annotations

import ast
import dis
import inspect
import math
import textwrap
import types
from typing import Any, Callable, Dict, List, Sequence, Set, Tuple

# A packed constant's text is at most this long: a bigger value is data,
# which belongs in a task's arguments.
MAX_CONSTANT = 100_000

_CONSTANT_TYPES = (type(None), bool, int, float, complex, str, bytes)


class _Packer:
    def __init__(self) -> None:
        self.imports: List[str] = []
        self.constants: List[str] = []
        self.definitions: List[str] = []
        self.packed: Dict[str, Any] = {}  # module-level name -> the object packed under it
        self._pending: List[Tuple[str, Any, str]] = []  # (name, object, the function that needs it)

    def pack_function(self, function: Any, needed_by: str = "") -> None:
        what = f"{needed_by} uses {function.__name__}, which" if needed_by else f"{function!r}"
        if not isinstance(function, types.FunctionType):
            raise TypeError(f"{what} is not a Python function (a {type(function).__name__}): tasks are functions "
                            "defined with def")
        name = function.__name__
        if name == "<lambda>":
            raise TypeError("a lambda cannot be a task: it has no name to map by; define it with def")
        if function.__code__.co_freevars:
            raise TypeError(
                f"{name} uses {', '.join(function.__code__.co_freevars)} of the function it was defined in (a "
                "closure): define it at the top level, and pass what it needs as arguments"
            )
        if function.__qualname__ != name:
            raise TypeError(f"{name} is defined inside {function.__qualname__.rsplit('.', 2)[0]}: a task is "
                            "defined at the top of its script, notebook cell or module")
        if not self._claim(name, function, needed_by):
            return
        source = self._source(function, name)
        self.definitions.append(source)
        for global_name in sorted(_globals_read(function.__code__) | _names_in_signature(source)):
            if global_name in function.__globals__:
                self._pending.append((global_name, function.__globals__[global_name], name))
            # Otherwise a builtin, or a name nothing defines (the task's own
            # NameError, as it would be without the pool).

    def pack_class(self, cls: type, needed_by: str) -> None:
        name = cls.__name__
        if not self._claim(name, cls, needed_by):
            return
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError) as e:
            raise TypeError(f"{needed_by} uses the class {name}, whose source is not available ({e}): define it in a "
                            "file, or pass what the task needs as arguments") from None
        self.definitions.append(source)
        for method in vars(cls).values():
            code = getattr(method, "__code__", None)
            globals_ = getattr(method, "__globals__", None)
            if code is None or globals_ is None:
                continue
            for global_name in sorted(_globals_read(code)):
                if global_name in globals_:
                    self._pending.append((global_name, globals_[global_name], name))

    def resolve(self) -> None:
        while self._pending:
            name, value, needed_by = self._pending.pop(0)
            self._resolve(name, value, needed_by)

    def _resolve(self, name: str, value: Any, needed_by: str) -> None:
        if name in self.packed:
            if self.packed[name] is not value:
                raise TypeError(f"{needed_by} and another packed function mean different things by {name}")
            return
        if isinstance(value, types.ModuleType):
            self.packed[name] = value
            module = value.__name__
            self.imports.append(f"import {module}" if module == name else f"import {module} as {name}")
            return
        home = getattr(value, "__module__", None)
        if callable(value) and home not in (None, "__main__") and not _defined_here(value, needed_by, self):
            qualname = getattr(value, "__qualname__", name)
            if "." in qualname or "<" in qualname:
                raise TypeError(f"{needed_by} uses {name}, which is {qualname} of {home}: only names at the top "
                                "of a module can be imported into the tasks")
            self.packed[name] = value
            self.imports.append(f"from {home} import {qualname}" + ("" if qualname == name else f" as {name}"))
            return
        if isinstance(value, types.FunctionType):
            self.pack_function(value, needed_by)
            return
        if isinstance(value, type):
            self.pack_class(value, needed_by)
            return
        text = _constant_text(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise TypeError(f"{needed_by} uses {name}, which is {value!r}: not a constant Python can write; make it "
                            f"inside the task (float({str(value)!r}))")
        if text is None:
            raise TypeError(
                f"{needed_by} uses {name}, a {type(value).__name__}, which cannot be copied into the sandbox: "
                "tasks get functions, classes, modules and constants (None, bools, numbers, strings, bytes, and "
                "tuples, lists, dicts and sets of them); pass it as an argument instead"
            )
        self.packed[name] = value
        self.constants.append(f"{name} = {text}")

    def _claim(self, name: str, value: Any, needed_by: str) -> bool:
        """Records `value` as the module-level `name`: False if it is packed already."""
        if name in self.packed:
            if self.packed[name] is value:
                return False
            raise TypeError(f"two different things are named {name}" + (f" (used by {needed_by})" if needed_by else ""))
        self.packed[name] = value
        return True

    @staticmethod
    def _source(function: types.FunctionType, name: str) -> str:
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError) as e:
            raise TypeError(f"the source of {name} is not available ({e}): define it in a script, a notebook cell "
                            "or a module file") from None
        tree = ast.parse(source)
        definition = tree.body[0] if tree.body else None
        if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)) or definition.name != name:
            raise TypeError(f"the source of {name} is not a def of it")
        # Without its decorators: the task is the function itself.
        lines = source.splitlines(keepends=True)
        return "".join(lines[definition.lineno - 1:definition.end_lineno])


def _defined_here(value: Any, needed_by: str, packer: _Packer) -> bool:
    """Whether `value` (a callable whose module is not __main__) is defined
    in the same module as the functions being packed (a notebook's module
    name, for instance), and so packed by its source."""
    globals_ = getattr(value, "__globals__", None)
    owner = packer.packed.get(needed_by)
    return globals_ is not None and globals_ is getattr(owner, "__globals__", None)


def _globals_read(code: types.CodeType) -> Set[str]:
    """The global names `code` and the code nested in it read or write."""
    names: Set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"):
                argval = instruction.argval
                # 3.11+: LOAD_GLOBAL's argval can be "NULL + name".
                names.add(str(argval).rsplit(" ", 1)[-1])
        stack.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return names


def _names_in_signature(source: str) -> Set[str]:
    """Names read where the function is defined: its defaults and annotations."""
    definition = ast.parse(source).body[0]
    assert isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef))
    parts: List[ast.AST] = [definition.args]
    if definition.returns is not None:
        parts.append(definition.returns)
    return {node.id for part in parts for node in ast.walk(part) if isinstance(node, ast.Name)}


def _constant_text(value: Any) -> str | None:
    """`value` as Python source that makes an equal value, if it is a
    constant (see the module's doc), else None. Checked by reading the
    text back with `ast.literal_eval`: a NaN, an infinity or an object
    whose `repr` is not its value is no constant."""
    def is_constant(v: Any, depth: int) -> bool:
        if depth > 20:
            return False
        if type(v) in _CONSTANT_TYPES:
            return True
        if type(v) in (tuple, list, set):
            return all(is_constant(x, depth + 1) for x in v)
        if type(v) is dict:
            return all(is_constant(k, depth + 1) and is_constant(x, depth + 1) for k, x in v.items())
        return False

    if not is_constant(value, 0):
        return None
    text = repr(value)
    if len(text) > MAX_CONSTANT:
        return None
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return text if type(back) is type(value) and back == value else None


def pack(functions: Sequence[Callable[..., Any]]) -> Tuple[str, Dict[str, Callable[..., Any]]]:
    """The source of a tasks module holding `functions` and what they use,
    and the functions given, by task name."""
    if not functions:
        raise ValueError("no functions to make tasks of")
    packer = _Packer()
    given: Dict[str, Callable[..., Any]] = {}
    for function in functions:
        packer.pack_function(function)
        given[function.__name__] = function
    packer.resolve()
    parts = ['"""Tasks packed by wasmpool from ' + ", ".join(sorted(given)) + '."""\n']
    if packer.imports:
        parts.append("\n".join(sorted(set(packer.imports))) + "\n")
    if packer.constants:
        parts.append("\n".join(packer.constants) + "\n")
    parts.extend(packer.definitions)
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts), given
