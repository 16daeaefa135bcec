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
        # (name, object, the function or class that needs it, its globals)
        self._pending: List[Tuple[str, Any, str, Dict[str, Any]]] = []
        # The functions packed by their source, by name (public ones are tasks).
        self.functions: Dict[str, Any] = {}

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
        self.functions[name] = function
        for global_name in sorted(_globals_read(function.__code__) | _names_in_defaults(source)):
            if global_name in function.__globals__:
                self._pending.append((global_name, function.__globals__[global_name], name, function.__globals__))
            # Otherwise a builtin, or a name nothing defines (the task's own
            # NameError, as it would be without the pool).

    def pack_class(self, cls: type, needed_by: str, owner_globals: Dict[str, Any]) -> None:
        name = cls.__name__
        if not self._claim(name, cls, needed_by):
            return
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError) as e:
            raise TypeError(f"{needed_by} uses the class {name}, whose source is not available ({e}; a class "
                            "defined in a notebook has none before Python 3.13): define it in a file, or pass "
                            "what the task needs as arguments") from None
        self.definitions.append(source)
        # Every name the class's source reads (decorators, bases, body,
        # methods, however wrapped), as far as its module defines it.
        read = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
        for global_name in sorted(read - {name}):
            if global_name in owner_globals:
                self._pending.append((global_name, owner_globals[global_name], name, owner_globals))

    def resolve(self) -> None:
        while self._pending:
            name, value, needed_by, owner_globals = self._pending.pop(0)
            self._resolve(name, value, needed_by, owner_globals)

    def _resolve(self, name: str, value: Any, needed_by: str, owner_globals: Dict[str, Any]) -> None:
        if name in self.packed:
            if self.packed[name] is not value:
                raise TypeError(f"{needed_by} and another packed function mean different things by {name}")
            return
        if isinstance(value, types.ModuleType):
            _check_importable(value.__name__, needed_by, name)
            self.packed[name] = value
            module = value.__name__
            self.imports.append(f"import {module}" if module == name else f"import {module} as {name}")
            return
        if isinstance(value, types.FunctionType) and value.__globals__ is owner_globals:
            self.pack_function(value, needed_by)
            return
        if isinstance(value, type) and getattr(value, "__module__", None) == owner_globals.get("__name__"):
            self.pack_class(value, needed_by, owner_globals)
            return
        if callable(value):
            found = _importable_as(value)
            if found is None:
                raise TypeError(f"{needed_by} uses {name}, a {type(value).__name__} that no module's top level "
                                "holds, so it cannot be imported into the tasks: define it with def beside them")
            home, attribute = found
            _check_importable(home, needed_by, name)
            self.packed[name] = value
            self.imports.append(f"from {home} import {attribute}" + ("" if attribute == name else f" as {name}"))
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


def _importable_as(value: Any) -> "Tuple[str, str] | None":
    """(module, attribute) such that `from module import attribute` gives
    `value` (or an equal bound method: `random.randint` is a method of
    `random`'s hidden instance), if a loaded module's top level holds it."""
    import sys

    homes = [getattr(value, "__module__", None)]
    owner = getattr(value, "__self__", None)
    if owner is not None:
        homes.append(getattr(type(owner), "__module__", None))
        if isinstance(owner, types.ModuleType):
            homes.append(owner.__name__)
    wanted = getattr(value, "__name__", None)
    for home in homes:
        module = sys.modules.get(home) if isinstance(home, str) else None
        if module is None or not isinstance(home, str) or home == "__main__":
            continue
        if isinstance(wanted, str) and _same(getattr(module, wanted, None), value):
            return home, wanted
        for attribute, candidate in vars(module).items():
            if not attribute.startswith("_") and _same(candidate, value):
                return home, attribute
    return None


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(type(a) is type(b) and hasattr(b, "__self__") and a == b)
    except Exception:
        return False


def _check_importable(module: str, needed_by: str, name: str) -> None:
    """Refuses a module that tasks cannot import: one outside Python's
    standard library (on 3.10 and later, which list it)."""
    import sys

    top = module.split(".")[0]
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is not None and top not in stdlib and top != "wasmpool":
        raise TypeError(
            f"{needed_by} uses {name} from {top}, which is not part of Python's standard library: tasks defined "
            "inline can import the standard library only (numpy and other native extensions never: write "
            "such tasks in Rust); pass what the task needs as arguments"
        )


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


def _names_in_defaults(source: str) -> Set[str]:
    """Names read where the function is defined: in its default values.
    (Not its annotations: the packed module defers them.)"""
    definition = ast.parse(source).body[0]
    assert isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef))
    defaults = [*definition.args.defaults, *(d for d in definition.args.kw_defaults if d is not None)]
    return {node.id for default in defaults for node in ast.walk(default) if isinstance(node, ast.Name)}


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
    text = _literal(value)
    if len(text) > MAX_CONSTANT:
        return None
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return text if type(back) is type(value) and back == value else None


def _literal(value: Any) -> str:
    """`repr`, with sets in a fixed order (a set's `repr` follows string
    hashing, which differs from run to run: the packed module, and so its
    build, would too)."""
    if type(value) is set:
        return "{" + ", ".join(sorted(map(_literal, value))) + "}" if value else "set()"
    if type(value) is list:
        return "[" + ", ".join(map(_literal, value)) + "]"
    if type(value) is tuple:
        return "(" + ", ".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    if type(value) is dict:
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def pack(functions: Sequence[Callable[..., Any]]) -> Tuple[str, Dict[str, Callable[..., Any]]]:
    """The source of a tasks module holding `functions` and what they use,
    and its tasks: every public function packed (the given ones and the
    helpers they use), by name."""
    if not functions:
        raise ValueError("no functions to make tasks of")
    packer = _Packer()
    for function in functions:
        name = getattr(function, "__name__", "")
        if isinstance(name, str) and name.startswith("_") and name != "<lambda>":
            raise TypeError(f"{name} is private (its name starts with _), so it would not be a task: rename it")
        packer.pack_function(function)
    packer.resolve()
    tasks = {name: f for name, f in packer.functions.items() if not name.startswith("_")}
    parts = ['"""Tasks packed by wasmpool from ' + ", ".join(f.__name__ for f in functions) + '."""\n',
             # Annotations stay text: they may name what is not packed.
             "from __future__ import annotations\n"]
    if packer.imports:
        parts.append("\n".join(sorted(set(packer.imports))) + "\n")
    if packer.constants:
        parts.append("\n".join(packer.constants) + "\n")
    # What the given functions use first: a default value is read where
    # its function is defined.
    parts.extend(reversed(packer.definitions))
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts), tasks
