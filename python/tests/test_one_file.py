"""Hinsen's slide as one script: the functions, a pool of them and the
maps in one file, with no `if __name__ == "__main__":` guard and the pool
made before the functions it runs (docs/python.md, "One file"). The
script is its own tasks module: `Pool(__file__)`. Inside the sandbox its
top level runs as an import would, except the statements that use the
pool (`wasmpool_runner._run_module`); every function exists wherever it
is defined. Also: a task named by its function (`pool.map(sqrt, xs)`)."""
import ast
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wasmpool
from conftest import REPO, python_tasks_available
from scripts import env

TASKS = REPO / "examples" / "python" / "tasks.py"
IN_TASK = Path(wasmpool.__file__).parent / "_build" / "wasmpool_in_task.py"

# Every script starts with the same imports, so that they share one
# interpreter build (a build per set of imports). pytest stands for numpy
# or matplotlib: a module of the host's that the sandbox does not have.
HEADER = "import math\nimport sys\nimport pytest\nfrom wasmpool import Pool, TaskError\n"

ONE_FILE = HEADER + textwrap.dedent(
    """
    with Pool(__file__, workers=2, processes=PROCESSES, seed=7) as pool:
        print("roots", pool.map("sqrt", range(5)))          # defined below: by name
        later = pool.map("defined_last", range(4))           # defined below the pool
        print("later", later)
        try:
            pool.call("halve", 1)
        except TaskError as e:   # also an AssertionError: the task's own exception
            print("failed", type(e).__name__, isinstance(e, AssertionError))

    print("total", sum(later))                                # needs `later`: skipped inside

    def sqrt(x):
        return math.sqrt(x)

    def halve(x):
        assert x % 2 == 0, "odd"
        return x // 2

    def defined_last(x):
        return x + SHIFT

    SHIFT = 100
    """
)


def run(tmp_path, program, *args, name="slide.py"):
    path = tmp_path / name
    path.write_text(program)
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=env(),
                          cwd=tmp_path, timeout=600)


def test_the_in_task_module_knows_every_host_name():
    tree = ast.parse(IN_TASK.read_text())
    host_only = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_HOST_ONLY"
    )
    in_task = {"send", "progress", "task_seed"}
    assert sorted(host_only) == sorted(set(wasmpool.__all__) - in_task)


@python_tasks_available()
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_one_script_no_guard_functions_after_the_pool(tmp_path, kind):
    ran = run(tmp_path, ONE_FILE.replace("PROCESSES", str(kind == "processes")))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"roots {[math.sqrt(x) for x in range(5)]}",
        "later [100, 101, 102, 103]",
        "failed AssertionError True",
        "total 406",
    ], ran.stderr


@python_tasks_available()
def test_a_task_by_its_function_in_a_script_that_is_its_own_tasks_module(tmp_path):
    program = HEADER + textwrap.dedent(
        """
        def double(x):
            return 2 * x
        pool = Pool(__file__, workers=1)
        print(pool.map(double, [1, 2]), pool.call(double, 5))
        pool.close()
        """
    )
    ran = run(tmp_path, program)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[0] == "[2, 4] 10"


@python_tasks_available()
def test_top_level_code_the_sandbox_refuses_fails_the_load_saying_why(tmp_path):
    program = HEADER + textwrap.dedent(
        """
        COUNT = int(sys.argv[1])
        def f(x):
            return x
        with Pool(__file__) as pool:
            print(pool.map(f, range(COUNT)))
        """
    )
    ran = run(tmp_path, program, "3")
    assert ran.returncode != 0
    assert "IndexError" in ran.stderr, ran.stderr
    assert 'if __name__ == "__main__":' in ran.stderr, ran.stderr


@python_tasks_available()
def test_a_statement_failing_for_another_reason_still_fails_the_load(tmp_path):
    program = HEADER + textwrap.dedent(
        """
        LIMIT = 1 // 0
        def f(x):
            return x
        with Pool(__file__) as pool:
            print(pool.map(f, [1]))
        """
    )
    ran = run(tmp_path, program)
    assert ran.returncode != 0
    # The host ran the script first: the student sees Python's own error.
    assert "ZeroDivisionError" in ran.stderr


@python_tasks_available()
def test_inside_the_sandbox_a_pool_is_refused_by_name(tmp_path):
    program = HEADER + textwrap.dedent(
        """
        def nested(x):
            with Pool(__file__) as pool:
                return pool.map(nested, [x])
        if __name__ == "__main__":
            with Pool(__file__, workers=1) as pool:
                try:
                    pool.call(nested, 1)
                except Exception as e:
                    print(type(e).__name__, str(e))
        """
    )
    ran = run(tmp_path, program)
    assert ran.returncode == 0, ran.stderr
    assert "HostOnly: wasmpool.Pool belongs to the program that runs the tasks" in ran.stdout, ran.stdout


@python_tasks_available()
def test_a_task_of_a_tasks_module_by_its_function():
    sys.path.insert(0, str(TASKS.parent))
    try:
        import tasks
    finally:
        sys.path.pop(0)
    with wasmpool.Pool(TASKS, workers=1) as pool:
        assert pool.map(tasks.sqrt, [4, 9]) == [2.0, 3.0]
        assert pool.call(tasks.add, 2, 3) == 5
        assert pool.submit(tasks.sqrt, 16).result() == 4.0


def test_a_function_the_workers_do_not_have_is_refused_clearly(module):
    with wasmpool.Pool(module, workers=1) as pool:
        with pytest.raises(TypeError, match="is a function of this program, which the workers do not have"):
            pool.map(lambda x: x, [1])
        with pytest.raises(TypeError, match=r"name one of them, as in pool.map\('"):
            pool.call(math.sqrt, 4)
        with pytest.raises(TypeError, match="a task is named by a str"):
            pool.map(4, [1])


@python_tasks_available()
def test_host_side_imports_and_a_main_function_are_skipped_inside(tmp_path):
    # pytest stands for numpy or matplotlib: installed here, not in the
    # sandbox. main() sets a global the next statement reads.
    program = HEADER + textwrap.dedent(
        """
        def main():
            global results
            with Pool(__file__, workers=1) as pool:
                results = pool.map("root", [4, 9])
                try:
                    pool.call("uses_pytest", 1)
                except TaskError as e:
                    print("failed", type(e).__name__, "pytest was not imported inside the sandbox" in str(e))

        def root(x):
            return math.sqrt(x)

        def uses_pytest(x):
            return pytest.approx(x)

        main()
        print("results", results)
        """
    )
    ran = run(tmp_path, program)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["failed NameError True", "results [2.0, 3.0]"], ran.stderr


GUIDE = REPO / "docs" / "guide-for-python-students.md"


def _guide_script(first_line: str) -> str:
    """The code block of the students' guide that starts with `first_line`."""
    text = GUIDE.read_text()
    start = text.index("```python\n" + first_line) + len("```python\n")
    return text[start:text.index("```", start)]


@python_tasks_available()
def test_the_students_guide_monte_carlo_pi_is_the_same_for_any_worker_count(tmp_path):
    # Copied from the docs by the test, so the guide cannot drift.
    script = _guide_script("# pi.py")
    assert "workers=2" in script
    estimates = []
    for workers in (2, 1, 2):
        path = tmp_path / "pi.py"
        path.write_text(script.replace("workers=2", f"workers={workers}"))
        run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env(), timeout=300,
                             cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        estimates.append(run.stdout.strip())
    assert estimates[0] == estimates[1] == estimates[2], estimates
    assert abs(float(estimates[0]) - math.pi) < 0.01, estimates
