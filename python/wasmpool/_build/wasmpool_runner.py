"""wasmpool's runner for tasks written in Python.

Built into the component with CPython (componentize-py), but not with the
user's module: the component is the same for every module that imports the
same standard modules, so an edit of `tasks.py` reuses it, already built
and compiled. The module's source comes in the component's custom section
`wasmpool-start`, which the host hands to the start call
(`call("", start)`, wit/wasmpool-task.wit) of every new instance: the
runner runs it there, as an import would, and every public function it
defines becomes a task of the `wasmpool:task` world. Arguments and results
are JSON, as for Rust-written tasks' JSON entry points (docs/abi.md): one
argument bare, several as an array. Before each call every generator of
`random` in the state inputs start from (the module's own, those the
standard modules made at build, and every `random.Random` the module's
top-level code made and kept, such as `rng = random.Random()` at the top
of tasks.py) is seeded from the host's task seed, each with a stream of its
own: results do not depend on which worker ran the task, and no two inputs
draw the same numbers.

The start runs once on every new instance, before any input; an instance
reset between inputs goes back to the state after it. It opens the WASI
streams every input may use (stdout and stderr), runs the module, and runs
the call path a few times on a function of the runner's own (`_warm_up`),
so that the state every input starts from has that path adapted by
CPython's specializing interpreter (4 to 6 µs less per input of `sqrt`
with a fresh state, about 5 %, measured side by side in one process).
"""
import gc
import inspect
import io
import json
import random
import sys
import traceback
import types
from importlib.machinery import ModuleSpec

import componentize_py_types
from wasmpool import HostOnly
from wit_world import exports
from wit_world.exports import tasks as wit
from wit_world.imports import host


def _public_functions(module):
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__:
            continue  # imported, not defined here
        yield name, value


def _type_name(annotation):
    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return "any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _describe_params(signature):
    """The parameters a call can pass, for `describe`: the positional ones,
    each as (name, type text), the type followed by ` = default` if a call
    may leave it out (wit/wasmpool-task.wit's `param.ty`), and `*args` as
    a parameter named `*args`. Keyword-only parameters and `**kwargs` are
    left out: a task's arguments are positional."""
    params = []
    for p in signature.parameters.values():
        # " = " in an annotation's text would read as a default.
        text = _type_name(p.annotation).replace(" = ", "=")
        if p.kind == p.VAR_POSITIONAL:
            params.append(wit.Param("*" + p.name, text + " = ()"))
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is not p.empty:
                try:
                    default = " ".join(repr(p.default).split())
                except Exception:
                    default = "..."
                text = f"{text} = {default if len(default) <= 60 else default[:59] + '…'}"
            params.append(wit.Param(p.name, text))
    return params


def _raise(error):
    raise componentize_py_types.Err(error)


def _exception(module_file):
    """The exception being handled, as the world's `exception` record: its
    traceback from the first frame of the user's module down (not this
    runner's frames), with `file:line` of the innermost frame in that
    module (or, for a syntax error, of the error)."""
    kind, value, tb = sys.exc_info()
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename != module_file:
        first = first.tb_next
    if first is not None:
        tb = first
    elif isinstance(value, SyntaxError):
        tb = None  # the error names its file and line: the runner's frames say nothing
    elif tb is not None:
        tb = tb.tb_next or tb
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if f.filename == module_file] or frames
    last = own[-1] if own else None
    if isinstance(value, SyntaxError) and value.filename == module_file:
        location = f"{module_file}:{value.lineno}"
    else:
        location = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else ""
    text = "".join(traceback.format_exception(kind, value, tb))
    message = "".join(traceback.format_exception_only(kind, value)).strip() or "exception"
    if isinstance(value, ModuleNotFoundError) and value.name:
        message += "\n" + _missing_module_hint(value.name.split(".")[0], module_file)
    return wit.Exception(message, location, text)


# Native extensions with no WebAssembly (WASI) build on PyPI (as in
# componentize.py, which refuses their unconditional imports before a build).
_NATIVE = ("numpy", "scipy", "pandas")


def _missing_module_hint(name, module_file):
    if name in _NATIVE:
        return (f"{name} is a native extension: no build of it for WebAssembly (WASI) is available "
                "from the package registries, so tasks written in Python cannot import it")
    return (f"the component holds the standard modules {module_file} imports, {module_file} and the modules "
            f"of your own beside it that it imports ({name}.py, or a folder {name}/ with an __init__.py): "
            f"{name} is none of these (a package installed in the environment is carried only when named: "
            f'Pool(..., packages=["{name}"]), wasmpool run --package {name})')


def _frozen_generators():
    """Every `random.Random` alive now, at build time (those the standard
    modules made as they were imported), but the module's own (seeded as
    `random.seed`): they would otherwise be in the state every input
    starts from, and repeat the same numbers in every input."""
    own = getattr(random, "_inst", None)
    return [g for g in gc.get_objects() if isinstance(g, random.Random) and g is not own]


class _NewGenerators:
    """Records every `random.Random` made while active (by the user's
    module's top-level code, such as `rng = random.Random()`; made through
    `Random.__init__`, as every generator of a subclass that calls it is):
    found without walking the heap, since `gc.get_objects()` would write to
    the reference count of every object, and so to every page of memory,
    which an instance reset between inputs then copies back each time. Held
    weakly: `alive()` gives those still alive, not the temporaries."""

    def __enter__(self):
        import weakref

        made, init = [], random.Random.__init__
        self._init, self._made = init, made

        def tracking(generator, *args, **kwargs):
            made.append(weakref.ref(generator))
            init(generator, *args, **kwargs)

        random.Random.__init__ = tracking
        return self

    def __exit__(self, *exc):
        random.Random.__init__ = self._init

    def alive(self):
        return [g for g in (ref() for ref in self._made) if g is not None]


def _reseed(seed, generators):
    random.seed(seed)
    for i, generator in enumerate(generators):
        # A stream per generator and input, none equal to the module's
        # stream of any input (task seeds are below 2**64).
        generator.seed(((i + 1) << 64) | seed)


def _ready():
    """Opens stdout and stderr through WASI (see the module's doc)."""
    import os
    for fd in (1, 2):
        os.write(fd, b"")
    return "null"


def _run_module(spec):
    """Runs the user's module from the start argument (`spec`: `module`,
    its name; `source`; and `code`, its compiled statements, if a first
    instance gave them) as an import would, and returns it with its
    compiled statements. Its lines go into `linecache`, so that tracebacks
    show them: the component holds no file to read them from. (No
    modification time: `checkcache` leaves such entries.)

    One difference from an import, so that a script that defines its tasks
    and maps them, with no `if __name__ == "__main__":` guard, is also its
    own tasks module (docs/python.md, "One file"): the top-level statements
    run one at a time, and one that uses the host's side of wasmpool
    (`with Pool(__file__) as pool: ...`, which raises `HostOnly` here) is
    skipped from where it got to, as is any later one that needs a name
    only a skipped statement would have bound (`print(pool.map(...))`
    after `pool = Pool(...)`). The statements after them still run, so
    every function exists wherever it is defined."""
    import base64
    import linecache
    import marshal

    name, source = spec["module"], spec["source"]
    if spec.get("modules"):
        # After the component's own finders: a standard module keeps its name.
        sys.meta_path.append(_CarriedModules(spec["modules"]))
    filename = f"{name}.py"
    module = types.ModuleType(name)
    module.__file__ = filename
    # Lines as the compiler counts them (at newlines only, not at form feeds).
    lines = io.StringIO(source).readlines()
    linecache.cache[filename] = (len(source), None, lines, filename)
    # Importable by its name (`pickle`, `__module__`), unless the name is a
    # module already there (a tasks file named like a standard module).
    sys.modules.setdefault(name, module)
    if "code" in spec:
        compiled = marshal.loads(base64.b64decode(spec["code"]))
    else:
        compiled = _compile_statements(source, filename)
    # Names no statement inside the sandbox binds, and modules that the
    # sandbox does not have (for the note of a task failing on one).
    unbound = set()
    own_pool = compiled["own_pool"]
    for code, binds, is_import in compiled["statements"]:
        try:
            exec(code, module.__dict__)
        except HostOnly:
            # What a function declares `global` may have been left unset
            # by the skipped call (`main()` setting `results`).
            unbound.update(binds, compiled["globals"])
        except NameError as e:
            if getattr(e, "name", None) not in unbound:
                _note_own_pool(e, own_pool)
                raise
            unbound.update(binds)
        except ImportError as e:
            # A script that makes its own pool imports for its host side
            # too (numpy, matplotlib): such an import is skipped inside.
            if not (own_pool and is_import):
                _note_own_pool(e, own_pool)
                raise
            unbound.update(binds)
            _UNAVAILABLE.update((name, e.name or "") for name in binds)
        except Exception as e:
            _note_own_pool(e, own_pool)
            raise
    return module, compiled


class _CarriedModules:
    """Finds and loads the user's own modules that the build carried
    beside the tasks module (its `helpers.py`, a package folder beside it:
    componentize.py's `_carried_modules`), from their sources in the start
    argument, as Python imports them beside a script; their lines go into
    `linecache`, for tracebacks."""

    def __init__(self, modules):
        self._modules = modules

    def find_spec(self, name, path=None, target=None):
        entry = self._modules.get(name)
        if entry is None:
            return None
        spec = ModuleSpec(name, self, origin=entry["file"], is_package=entry["package"])
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import linecache

        entry = self._modules[module.__name__]
        source, filename = entry["source"], entry["file"]
        linecache.cache[filename] = (len(source), None, io.StringIO(source).readlines(), filename)
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)


# Names a script that makes its own pool imported from modules the sandbox
# does not have, with the module (`_run_module`): a task that uses one
# fails with a NameError, noted with the reason.
_UNAVAILABLE = set()


def _note_unavailable(error):
    """Explains a task's NameError for a name whose import was skipped."""
    name = getattr(error, "name", None)
    for bound, module in _UNAVAILABLE:
        if bound == name and hasattr(error, "add_note"):
            error.add_note(
                f"{name} was not imported inside the sandbox: {module or 'its module'} is not available to "
                "tasks written in Python (only the standard library and pure-Python modules are); use it "
                "outside the tasks, or write this task in Rust"
            )
            return


def _note_own_pool(error, own_pool):
    """Explains, on an error of a script that makes its own pool, why its
    top-level code ran inside the sandbox."""
    if own_pool and hasattr(error, "add_note"):
        error.add_note(
            "This module makes its own pool, so its top-level code runs inside the sandbox too, as an "
            "import would (all but the statements that use the pool), where there are no command-line "
            "arguments, files, environment variables or clock: put what needs them under "
            'if __name__ == "__main__": or inside the function that uses them.'
        )


def _compile_statements(source, filename):
    """`source`'s top-level statements, each compiled on its own (with the
    `__future__` imports at its top in force for all), with the names each
    binds at the top level and whether it is an import; the names any
    function declares `global`; and whether the module makes its own pool
    (imports a host-only name of wasmpool: `from wasmpool import Pool`)."""
    import __future__
    import ast

    from wasmpool import _HOST_ONLY

    tree = ast.parse(source, filename)
    flags = 0
    statements = []
    declared = set()
    own_pool = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            declared.update(node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "wasmpool":
            own_pool = own_pool or any(alias.name in _HOST_ONLY for alias in node.names)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wasmpool"
              and node.attr in _HOST_ONLY):
            own_pool = True
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
        code = compile(ast.Module([statement], type_ignores=[]), filename, "exec", flags=flags,
                       dont_inherit=True)
        is_import = isinstance(statement, (ast.Import, ast.ImportFrom))
        statements.append((code, sorted(_bound_names(statement)), is_import))
    return {"statements": statements, "globals": sorted(declared), "own_pool": own_pool}


def _bound_names(statement):
    """The module-level names `statement` may bind: assignment targets,
    `for` and `with` targets, imports, definitions, walrus targets; not
    inside the functions, classes and lambdas it defines."""
    import ast

    names = set()
    stack = [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            # Its name, and what is evaluated where it is defined; not its body.
            names.add(node.name)
            stack.extend(node.decorator_list)
            if isinstance(node, ast.ClassDef):
                stack.extend(node.bases)
                stack.extend(node.keywords)
            else:
                stack.append(node.args)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        stack.extend(ast.iter_child_nodes(node))
    return names


# How often the start runs the call path (`_run`) on `_warm_up`: CPython's
# specializing interpreter adapts each instruction on its first runs, and
# an instance reset between inputs returns to the state after the start,
# so a path warmed there is warm in every input (at no cost to results:
# a new instance runs the same start).
_WARM_UP_CALLS = 3


def _warm_up(x):
    return x


def preload(names):
    """Imports, at build time, the modules that the user's module imports,
    at its top or inside its functions (`import statistics` in a task's
    body): the component holds only the modules the build imported, so an
    import the build never ran would fail in every input. A name that
    cannot be imported here (a package the component does not hold) is
    left for the module or the task to fail on, as it would."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def _arity(function):
    """How `function` takes positional arguments: (required, most), with
    `most` None for `*args`. Read off its code object unless a decorator
    rewrapped it (then `inspect`, whose code would otherwise write to many
    more pages at the start: see `_warm_up_loading`)."""
    if hasattr(function, "__wrapped__") or hasattr(function, "__signature__"):
        params = inspect.signature(function).parameters.values()
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = sum(p.default is p.empty for p in positional)
        varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
        return required, None if varargs else len(positional)
    code = function.__code__
    defaults = len(function.__defaults__ or ())
    most = code.co_argcount
    return most - defaults, None if code.co_flags & inspect.CO_VARARGS else most


def _arguments(name, arity, args):
    """The positional arguments of a call of `name` (`arity` as `_arity`
    gives it) from its JSON input `args`: one argument bare, several as an
    array, none as null or []. A function of at most one parameter takes
    an array as its one argument; another spreads an array it can take
    that many arguments from; anything else is one argument, if the
    function can be called with one (so `scaled(x, factor=10)` takes a
    bare value, as a Python call would)."""
    required, most = arity
    if most == 0:
        if args not in (None, []):
            _raise(wit.CallError_BadArguments(f"{name}() takes no arguments"))
        return []
    one = required <= 1
    if isinstance(args, list) and most != 1:
        if required <= len(args) and (most is None or len(args) <= most):
            return args
    if one:
        return [args]
    if most is None:
        wanted = f"at least {required} arguments"
    elif required == most:
        wanted = f"{required} arguments"
    else:
        wanted = f"from {required} to {most} arguments"
    given = f"{len(args)}" if isinstance(args, list) else "one"
    _raise(wit.CallError_BadArguments(
        f"{name}() takes {wanted} and was given {given}: pass several as a tuple, as in "
        f"map({name!r}, [(a, b), ...]) or call({name!r}, a, b)"
    ))


def _load(spec_json):
    """Runs the user's module (`_run_module`) and returns it, its tasks,
    their arities, the generators its top-level code made, and what the
    start answers: the start argument with the module's compiled code
    added, for later instances (which then skip the compiler: each page the
    start writes is copied back at every reset between inputs, and a new
    instance costs less), or `null` if it was given. No collection runs
    meanwhile: one would walk (and write to) every object of the
    interpreter."""
    import base64
    import marshal

    spec = json.loads(spec_json)
    enabled = gc.isenabled()
    gc.disable()
    try:
        with _NewGenerators() as generators:
            module, compiled = _run_module(spec)
        functions = dict(_public_functions(module))
        arity = {name: _arity(f) for name, f in functions.items()}
    finally:
        if enabled:
            gc.enable()
    # What the module made, collected once now (the young objects only):
    # left to the first input, a collection would run over it in every
    # input, since each starts from the state after this start.
    gc.collect(0)
    made = generators.alive()
    answer = "null"
    if "code" not in spec:
        answer = json.dumps(dict(spec, code=base64.b64encode(marshal.dumps(compiled)).decode()))
    return module, functions, arity, made, answer


# A module like a user's, loaded at build time (`_warm_up_loading`).
_SAMPLE = {"module": "wasmpool_sample", "source": (
    "import random\n"
    "_rng = random.Random()\n"
    "LIMIT = 10\n"
    "def f(a: int, b=1) -> int:\n"
    "    \"\"\"A sample.\"\"\"\n"
    "    return a + b\n"
    "def g(*xs):\n"
    "    return sorted(xs)\n"
    "class Table:\n"
    "    size = 0\n"
)}


def _warm_up_loading():
    """Loads a sample module at build time, a few times, then forgets it:
    the code that loads a module (JSON, the compiler, `inspect`) is then
    adapted by CPython's specializing interpreter in the image every
    instance starts from, so the start writes less memory: each page it
    writes is copied back at every reset between inputs (551 pages per
    reset for tasks.py without this)."""
    import linecache

    spec = json.dumps(_SAMPLE)
    for _ in range(_WARM_UP_CALLS):
        compiled = _load(spec)[-1]
        _load(compiled)
    sys.modules.pop(_SAMPLE["module"], None)
    linecache.cache.pop(_SAMPLE["module"] + ".py", None)


def make_tasks():
    """The `Tasks` export class: its tasks are the public functions of the
    module its start runs (see the module's doc)."""
    loaded = {"functions": {}, "arity": {}, "generators": [], "file": ""}
    built_generators = _frozen_generators()
    _warm_up_loading()

    class Tasks(exports.Tasks):
        def describe(self):
            infos = []
            for name, f in loaded["functions"].items():
                signature = inspect.signature(f)
                params = _describe_params(signature)
                returns = _type_name(signature.return_annotation)
                infos.append(wit.TaskInfo(name, params, returns, inspect.getdoc(f) or ""))
            return infos

        def call(self, name, args_json):
            if name == "":
                return self._start(args_json)
            f = loaded["functions"].get(name)
            if f is None:
                _raise(wit.CallError_NoSuchTask(name))
            return self._run(f, name, loaded["arity"][name], args_json)

        def _start(self, spec_json):
            if spec_json:
                try:
                    module, functions, arity, made, answer = _load(spec_json)
                except BaseException:
                    # Its top-level code (a syntax error, an import the
                    # component lacks, sys.exit): the load fails, saying why.
                    try:
                        file = json.loads(spec_json)["module"] + ".py"
                    except Exception:
                        file = ""
                    _raise(wit.CallError_Raised(_exception(file)))
                loaded["functions"] = functions
                loaded["arity"] = arity
                own = getattr(random, "_inst", None)
                loaded["generators"] = built_generators + [g for g in made if g is not own]
                loaded["file"] = module.__file__
            else:
                answer = "null"
            for _ in range(_WARM_UP_CALLS):
                self._run(_warm_up, "_warm_up", (1, 1), "[0]")
            _ready()
            return answer

        def _run(self, f, name, n, args_json):
            try:
                args = json.loads(args_json)
            except ValueError as e:
                _raise(wit.CallError_BadArguments(f"the arguments are not JSON: {e}"))
            args = _arguments(name, n, args)
            try:
                # Inside: a generator whose seed() raises is the task's exception.
                _reseed(host.task_seed(), loaded["generators"])
                result = f(*args)
            except BaseException as e:
                if isinstance(e, NameError):
                    _note_unavailable(e)
                # SystemExit (sys.exit, with its status), KeyboardInterrupt
                # and the like too: otherwise they would leave the runner
                # and trap, their type and status lost.
                _raise(wit.CallError_Raised(_exception(loaded["file"])))
            try:
                return json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as e:
                _raise(wit.CallError_BadResult(f"{name} returned {type(result).__name__}, which JSON cannot hold: {e}"))

    return Tasks
