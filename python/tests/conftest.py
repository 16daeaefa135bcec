"""Shared fixtures: the demo task module (guest-tasks/, the one the Rust
tests use), built with cargo if it is not there yet, and pools of both
worker kinds."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _module_path() -> Path:
    given = os.environ.get("WASMPOOL_TEST_MODULE")
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "wasm-guest" / "wasm32-unknown-unknown" / "release" / "guest_tasks.wasm"
    if not path.is_file():
        # guest-tasks' build script compiles the module for wasm32.
        subprocess.run(["cargo", "build", "-p", "guest-tasks"], cwd=REPO, check=True)
    assert path.is_file(), f"building guest-tasks did not make {path}"
    return path


@pytest.fixture(scope="session")
def module() -> Path:
    """The demo module's path."""
    return _module_path()


@pytest.fixture(params=["threads", "processes"])
def kind(request) -> str:
    """Each worker kind in turn."""
    return request.param


@pytest.fixture
def pool(module, kind):
    """A pool of two workers of each kind over the demo module."""
    from wasmpool import Pool

    with Pool(module, workers=2, processes=(kind == "processes")) as pool:
        yield pool


def python_tasks_available():
    """A pytest mark: tests of tasks written in Python need componentize-py.
    Without it they are skipped, saying so; with WASMPOOL_REQUIRE_PYTHON_TASKS=1
    (as in CI) its absence is a failure instead."""
    from wasmpool import _build

    if _build.componentize_py_version() is not None:
        return pytest.mark.skipif(False, reason="available")
    if os.environ.get("WASMPOOL_REQUIRE_PYTHON_TASKS") == "1":
        raise RuntimeError("WASMPOOL_REQUIRE_PYTHON_TASKS=1 but componentize-py is not installed")
    return pytest.mark.skip(reason="componentize-py is not installed (pip install componentize-py)")
