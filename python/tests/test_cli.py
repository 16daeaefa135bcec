"""The `wasmpool` command with tasks written in Python: `build`, and
`run`/`list` given a .py module. The command is the one cargo built
(WASMPOOL_CLI, or target/debug/wasmpool); it builds with the Python that
runs these tests (WASMPOOL_PYTHON)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, python_tasks_available

HERE = Path(__file__).parent
TASKS = REPO / "examples" / "python" / "tasks.py"


def _cli() -> Path:
    given = os.environ.get("WASMPOOL_CLI")
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / ("wasmpool.exe" if os.name == "nt" else "wasmpool")


def _cli_mark():
    if _cli().is_file():
        return pytest.mark.skipif(False, reason="available")
    if os.environ.get("WASMPOOL_CLI"):
        raise RuntimeError(f"WASMPOOL_CLI names {_cli()}, which does not exist")
    return pytest.mark.skip(reason=f"the wasmpool command is not built ({_cli()}): cargo build -p wasmpool-cli")


pytestmark = [python_tasks_available(), _cli_mark()]


def wasmpool(*args, stdin="", env=None):
    environment = {**os.environ, "WASMPOOL_PYTHON": sys.executable, **(env or {})}
    return subprocess.run([str(_cli()), *map(str, args)], input=stdin, capture_output=True, text=True,
                          env=environment, timeout=600)


def test_build_writes_the_component_and_run_and_list_take_the_module(tmp_path):
    out = tmp_path / "tasks.wasm"
    built = wasmpool("build", TASKS, "-o", out)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\0asm\x0d\0\x01\0"

    listed = wasmpool("list", TASKS, "--json")
    assert listed.returncode == 0, listed.stderr
    names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
    assert names == ["sqrt", "pi_hits", "add", "boom", "now", "hog", "chatty", "calls_so_far", "entropy", "str_hash", "digits", "read_text", "write_text", "env", "nap", "rolls", "leave", "walk", "load_table", "extend_table", "nan_bits", "echo"]

    for module in (TASKS, out):
        ran = wasmpool("run", module, "sqrt", stdin="0\n4\n9\n")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.split() == ["0.0", "2.0", "3.0"]


def test_run_gives_the_same_random_numbers_for_any_worker_kind_and_count():
    lines = "1000\n" * 8
    outputs = {
        ran.stdout
        for args in (["-w", "1"], ["-w", "2"], ["-w", "2", "--processes"])
        for ran in [wasmpool("run", TASKS, "pi_hits", "--seed", "7", *args, stdin=lines)]
        if ran.returncode == 0 or pytest.fail(ran.stderr)
    }
    assert len(outputs) == 1
    other = wasmpool("run", TASKS, "pi_hits", "--seed", "8", stdin=lines)
    assert other.stdout not in outputs


def test_a_failing_python_task_names_its_line_and_a_clock_its_option():
    boom = wasmpool("run", TASKS, "boom", stdin="0\n")
    assert boom.returncode == 1
    assert "panicked at tasks.py:27: ZeroDivisionError" in boom.stderr
    now = wasmpool("run", TASKS, "now", stdin="null\n")
    assert now.returncode == 1
    assert "`time.time()` in Python" in now.stderr and "--allow-wall-clock" in now.stderr
    granted = wasmpool("run", TASKS, "now", "--allow-wall-clock", stdin="null\n")
    assert granted.returncode == 0, granted.stderr
    assert float(granted.stdout) > 1.7e9


def test_build_errors_are_clear(tmp_path):
    numeric = tmp_path / "numeric.py"
    numeric.write_text("import numpy\n")
    failed = wasmpool("build", numeric)
    assert failed.returncode == 2
    assert "line 1 imports numpy" in failed.stderr and "no build of it for WebAssembly" in failed.stderr
    not_python = wasmpool("build", tmp_path / "tasks.wasm")
    assert not_python.returncode == 2 and "not a Python module" in not_python.stderr
    no_python = wasmpool("build", TASKS, env={"WASMPOOL_PYTHON": str(tmp_path / "no-such-python")})
    assert no_python.returncode == 2 and "no-such-python" in no_python.stderr


def test_the_command_carries_an_installed_package_when_named(tmp_path):
    tasks = tmp_path / "tasks.py"
    tasks.write_text("from packaging.version import Version\n\n\ndef newer(a, b):\n    return Version(a) > Version(b)\n")
    ran = wasmpool("run", tasks, "newer", "--package", "packaging", "-q", stdin='["1.10", "1.9"]\n')
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "true"
    listed = wasmpool("list", tasks, "--package", "packaging")
    assert listed.returncode == 0 and "newer" in listed.stdout, listed.stderr
    refused = wasmpool("build", tasks, "--package", "no_such_package_here")
    assert refused.returncode == 2 and "no_such_package_here is not installed" in refused.stderr, refused.stderr
    wasm = wasmpool("list", tmp_path / "tasks.wasm", "--package", "packaging")
    assert wasm.returncode != 0 and "not a .wasm file" in wasm.stderr, wasm.stderr
