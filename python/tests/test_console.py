"""The `wasmpool` command as the package installs it: the console script
`wasmpool` (pyproject.toml's `[project.scripts]`), which is
`wasmpool._cli:main`, run here as `python -m wasmpool` from the checkout.
The same command as the executable (tests/test_cli.py, cli/tests/), run
inside the extension module; what differs is checked here: its worker
processes are this interpreter, and it builds with this interpreter."""
import json
import os
import subprocess
import sys
from pathlib import Path


from conftest import REPO, python_tasks_available

PACKAGE_PARENT = Path(__file__).resolve().parents[1]
TASKS = REPO / "examples" / "python" / "tasks.py"


def wasmpool(*args, stdin="", env=None):
    environment = {k: v for k, v in os.environ.items() if k not in ("WASMPOOL_PYTHON", "WASMPOOL_WORKER")}
    environment["PYTHONPATH"] = str(PACKAGE_PARENT)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "wasmpool", *map(str, args)], input=stdin,
                          capture_output=True, text=True, env=environment, timeout=600)


def test_the_console_script_is_the_commands_entry():
    pyproject = (PACKAGE_PARENT / "pyproject.toml").read_text()
    assert '[project.scripts]\nwasmpool = "wasmpool._cli:main"' in pyproject
    assert 'python-tasks = ["componentize-py==' in pyproject


def test_list_and_run_on_both_worker_kinds(module):
    listed = wasmpool("list", module, "--json")
    assert listed.returncode == 0, listed.stderr
    assert "sqrt" in [json.loads(line)["name"] for line in listed.stdout.splitlines()]
    for kind in ([], ["--processes", "-w", "2"]):
        ran = wasmpool("run", module, "sqrt", *kind, stdin="0\n4\n9\n")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.split() == ["0.0", "2.0", "3.0"]


def test_worker_processes_are_this_interpreter(module):
    # No wasmpool-worker anywhere: WASMPOOL_WORKER names nothing that runs.
    ran = wasmpool("run", module, "sqrt", "--processes", "-w", "1", stdin="16\n",
                   env={"WASMPOOL_WORKER": "/nonexistent/wasmpool-worker"})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["4.0"]


def test_exit_statuses_are_the_executables(module):
    failed = wasmpool("run", module, "divide", "--on-error", "continue", stdin="[1, 0]\n[4, 2]\n")
    assert failed.returncode == 1, failed.stderr
    assert len(failed.stdout.splitlines()) == 2
    usage = wasmpool("run")
    assert usage.returncode == 2
    assert "Usage: wasmpool run" in usage.stderr
    missing = wasmpool("list", "no-such-module.wasm")
    assert missing.returncode == 2
    assert missing.stderr.startswith("wasmpool: error:"), missing.stderr
    version = wasmpool("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("wasmpool ")


@python_tasks_available()
def test_python_tasks_build_with_this_interpreter_without_it_on_path(tmp_path):
    # PATH without this interpreter's folder: the command still builds with
    # it (the executable would look for python3 on PATH).
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != Path(sys.executable).parent.resolve())
    ran = wasmpool("run", TASKS, "sqrt", stdin="0\n4\n", env={"PATH": path})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["0.0", "2.0"]
