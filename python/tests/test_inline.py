"""Tasks defined where students write them: `Pool([sqrt, pi_hits])` packs
the functions, with what they use, into one tasks module
(wasmpool/_inline.py); in a script, with either worker kind; in a
notebook cell, executed headless with nbclient."""
import json
import math
import os
import random
import statistics
import subprocess
import sys
import textwrap

import pytest

import wasmpool
from wasmpool import _inline
from conftest import python_tasks_available
from scripts import env

SCALE = 10
TABLE = {"a": (1, 2.5), "b": [None, True, b"x"]}
NOT_A_NUMBER = float("nan")


def helper(x):
    return x * SCALE


def scaled_root(x, k=SCALE):
    """A task with a default read from a constant, a helper and two imports."""
    return math.sqrt(x) * k + helper(0) + statistics.mean([0, 0])


def pi_hits(samples: int) -> int:
    return sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(samples))


def table_size():
    return len(TABLE)


def test_what_is_packed():
    text, given = _inline.pack([scaled_root, pi_hits, table_size])
    # The given functions and the public helpers they use are the tasks.
    assert list(given) == ["scaled_root", "pi_hits", "table_size", "helper"]
    assert given["pi_hits"] is pi_hits
    lines = text.splitlines()
    for expected in ["import math", "import random", "import statistics", "SCALE = 10",
                     "TABLE = {'a': (1, 2.5), 'b': [None, True, b'x']}", "def helper(x):",
                     "def scaled_root(x, k=SCALE):", "def pi_hits(samples: int) -> int:"]:
        assert expected in lines, (expected, text)
    # Nothing else of this file: not the tests, not NOT_A_NUMBER, not pytest.
    assert "pytest" not in text and "NOT_A_NUMBER" not in text and "def test_" not in text
    compile(text, "packed.py", "exec")


def uses_a_live_object(x):
    return sys.stdout.write(str(x)) + len(OPEN_FILE.name)


OPEN_FILE = open(os.devnull)


def uses_nan(x):
    return NOT_A_NUMBER


def make_closure():
    offset = 1

    def shifted(x):
        return x + offset

    return shifted


@pytest.mark.parametrize("functions, refusal", [
    ([uses_a_live_object], "uses OPEN_FILE, a TextIOWrapper, which cannot be copied into the sandbox"),
    ([uses_nan], "uses NOT_A_NUMBER, which is nan"),
    ([make_closure()], "shifted uses offset of the function it was defined in (a closure)"),
    ([lambda x: x], "a lambda cannot be a task"),
    ([print], "is not a Python function"),
])
def test_what_cannot_be_packed_is_refused_by_name(functions, refusal):
    with pytest.raises(TypeError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        _inline.pack(functions)


def test_a_pool_refuses_unpackable_functions_before_building(module):
    with pytest.raises(TypeError, match="cannot make tasks of these functions: .* OPEN_FILE"):
        wasmpool.Pool([uses_a_live_object])


@python_tasks_available()
@pytest.mark.parametrize("processes", [False, True])
def test_a_pool_of_functions(processes):
    with wasmpool.Pool([scaled_root, pi_hits, table_size], workers=2, processes=processes, seed=7) as pool:
        assert sorted(t.name for t in pool.tasks()) == ["helper", "pi_hits", "scaled_root", "table_size"]
        assert pool.map(scaled_root, [4, 9]) == [20.0, 30.0]
        assert pool.call("table_size") == 2
        hits = pool.map(pi_hits, [1000] * 4)
    # The same functions: the same module, built and compiled once.
    with wasmpool.Pool([scaled_root, pi_hits, table_size], workers=1, seed=7) as again:
        # Seeds per input: the same numbers for any worker count and kind.
        assert again.map(pi_hits, [1000] * 4) == hits
        with pytest.raises(TypeError, match="which the workers do not have"):
            again.map(uses_nan, [1])


SCRIPT = textwrap.dedent(
    """
    import math
    import multiprocessing
    import random
    import sys
    from wasmpool import Pool

    def sqrt(x):
        return math.sqrt(x)

    def pi_hits(samples):
        return sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(samples))

    if __name__ == "__main__":
        multiprocessing.set_start_method(sys.argv[1])   # no matter to wasmpool
        for processes in (False, True):
            # The notebook test's functions: one module, built once.
            with Pool([sqrt, pi_hits], workers=2, processes=processes) as pool:
                print(pool.map(sqrt, range(4)))
    """
)


@python_tasks_available()
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_script_with_inline_tasks_under_either_start_method(tmp_path, method):
    path = tmp_path / "inline_script.py"
    path.write_text(SCRIPT)
    ran = subprocess.run([sys.executable, str(path), method], capture_output=True, text=True, env=env(),
                         cwd=tmp_path, timeout=600)
    assert ran.returncode == 0, ran.stderr
    roots = str([math.sqrt(x) for x in range(4)])
    assert ran.stdout.splitlines() == [roots, roots]


NOTEBOOK_CELLS = [
    "import math\nimport random\nfrom wasmpool import Pool",
    "def sqrt(x):\n    return math.sqrt(x)\n\n"
    "def pi_hits(samples):\n    return sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(samples))",
    "with Pool([sqrt, pi_hits], workers=2, seed=7) as pool:\n"
    "    roots = pool.map(sqrt, range(100))\n"
    "    hits = pool.map(pi_hits, [20_000] * 8)\n"
    "print(roots[:3], 4 * sum(hits) / 160_000)",
]


def _notebook_tools():
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError as e:
        if os.environ.get("WASMPOOL_REQUIRE_PYTHON_TASKS") == "1":
            raise RuntimeError(f"WASMPOOL_REQUIRE_PYTHON_TASKS=1 but {e.name} is not installed") from None
        pytest.skip(f"{e.name} is not installed (pip install nbclient ipykernel)")


@python_tasks_available()
def test_tasks_defined_in_a_notebook_cell(tmp_path, monkeypatch):
    _notebook_tools()
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    # The kernel is this Python, with this wasmpool first on its path.
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = notebook.cells[2].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert text.startswith("[0.0, 1.0, 1.4142135623730951] 3.1"), outputs
    nbformat.write(notebook, str(tmp_path / "slide.ipynb"))
    assert json.loads((tmp_path / "slide.ipynb").read_text())["cells"][2]["outputs"]
