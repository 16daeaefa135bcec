"""wasmpool's runner for tasks written in Python.

Built into the component with the user's module (componentize-py): every
public function defined in that module becomes a task of the
`wasmpool:task` world (wit/wasmpool-task.wit). Arguments and results are
JSON, as for Rust-written tasks' JSON entry points (docs/abi.md): one
argument bare, several as an array. Before each call every generator of
`random` that the build froze into the component (the module's own, and
every `random.Random` made at import, such as `rng = random.Random()` at
the top of tasks.py) is seeded from the host's task seed, each with a
stream of its own: results do not depend on which worker ran the task,
and no two inputs draw the same numbers.

`call("", "")` is not a task: the host makes it once on every new
instance, before any input, so that the WASI streams every input may use
(stdout and stderr) are opened by then; an instance reset between
inputs is then put back with them still open. It also runs the call path
a few times on a function of the runner's own (`_warm_up`), so that the
state every input starts from has that path adapted by CPython's
specializing interpreter (4 to 6 µs less per input of `sqrt` with a fresh
state, about 5 %, measured side by side in one process).
"""
import gc
import inspect
import json
import random
import traceback

import componentize_py_types
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


def _raise(error):
    raise componentize_py_types.Err(error)


def _exception(module_file):
    """The exception being handled, as the world's `exception` record: its
    traceback from the task down (not this runner's frame), with file names
    relative to the module's folder."""
    import sys

    kind, value, tb = sys.exc_info()
    tb = tb.tb_next or tb  # the first frame is `call`, below
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if f.filename == module_file] or frames
    last = own[-1] if own else None
    location = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else ""
    text = "".join(traceback.format_exception(kind, value, tb))
    folder = module_file.rsplit("/", 1)[0] if "/" in module_file else ""
    if folder:
        text = text.replace(f'File "{folder}/', 'File "')
    message = "".join(traceback.format_exception_only(kind, value)).strip() or "exception"
    return wit.Exception(message, location, text)


def _frozen_generators():
    """Every `random.Random` alive now, at build time, but the module's own
    (seeded as `random.seed`): they would otherwise be frozen into the
    component and repeat the same numbers in every input."""
    own = getattr(random, "_inst", None)
    return [g for g in gc.get_objects() if isinstance(g, random.Random) and g is not own]


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


def _keep_source(module):
    """Reads the module's lines now, at build time, into `linecache`, so
    that tracebacks show them: the component holds no file to read them
    from later. (No modification time: `checkcache` leaves such entries.)"""
    import linecache

    filename = getattr(module, "__file__", None)
    lines = linecache.getlines(filename) if filename else []
    if lines:
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


# How often the start runs the call path (`_run`) on `_warm_up`: CPython's
# specializing interpreter adapts each instruction on its first runs, and
# an instance reset between inputs returns to the state after the start,
# so a path warmed there is warm in every input (at no cost to results:
# a new instance runs the same start).
_WARM_UP_CALLS = 3


def _warm_up(x):
    return x


def preload(names):
    """Imports, at build time, the modules that the user's module imports
    inside its functions (`import statistics` in a task's body): the
    component holds only the modules the build imported, so an import the
    build never ran would fail in every input. A name that cannot be
    imported here (a package the component does not hold) is left for the
    task to fail on, as it would."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def make_tasks(module):
    """The `Tasks` export class for `module`'s public functions."""
    functions = dict(_public_functions(module))
    generators = _frozen_generators()
    _keep_source(module)
    arity = {name: len(inspect.signature(f).parameters) for name, f in functions.items()}
    module_file = getattr(module, "__file__", "")

    class Tasks(exports.Tasks):
        def describe(self):
            infos = []
            for name, f in functions.items():
                signature = inspect.signature(f)
                params = [wit.Param(p.name, _type_name(p.annotation)) for p in signature.parameters.values()]
                returns = _type_name(signature.return_annotation)
                infos.append(wit.TaskInfo(name, params, returns, inspect.getdoc(f) or ""))
            return infos

        def call(self, name, args_json):
            if name == "":
                for _ in range(_WARM_UP_CALLS):
                    self._run(_warm_up, "_warm_up", 1, "[0]")
                return _ready()
            f = functions.get(name)
            if f is None:
                _raise(wit.CallError_NoSuchTask(name))
            return self._run(f, name, arity[name], args_json)

        def _run(self, f, name, n, args_json):
            try:
                args = json.loads(args_json)
            except ValueError as e:
                _raise(wit.CallError_BadArguments(f"the arguments are not JSON: {e}"))
            if n == 0:
                if args not in (None, []):
                    _raise(wit.CallError_BadArguments(f"{name} takes no arguments"))
                args = []
            elif n == 1:
                args = [args]
            elif not isinstance(args, list) or len(args) != n:
                _raise(wit.CallError_BadArguments(f"{name} takes {n} arguments, as a JSON array of {n}"))
            try:
                # Inside: a generator whose seed() raises is the task's exception.
                _reseed(host.task_seed(), generators)
                result = f(*args)
            except BaseException:
                # SystemExit (sys.exit, with its status), KeyboardInterrupt
                # and the like too: otherwise they would leave the runner
                # and trap, their type and status lost.
                _raise(wit.CallError_Raised(_exception(module_file)))
            try:
                return json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as e:
                _raise(wit.CallError_BadResult(f"{name} returned {type(result).__name__}, which JSON cannot hold: {e}"))

    return Tasks
