"""`Pool`'s settings: the library's `Settings`, with the same names and
defaults as the command's options, checked by the library, and reaching
the tasks (grants included) on both worker kinds."""
import inspect
import json
import os
import subprocess
import sys

import pytest

from conftest import python_tasks_available
from wasmpool import Pool, _native
from wasmpool.errors import ConfigError

HERE = __import__("pathlib").Path(__file__).parent
TASKS = HERE.parents[1] / "examples" / "python" / "tasks.py"


# Pool's arguments that are not pool settings: the tasks, and what the build
# of tasks written in Python carries (the command's --package).
NOT_SETTINGS = {"module", "packages"}


def _pool_settings():
    return {name: p for name, p in inspect.signature(Pool).parameters.items() if name not in NOT_SETTINGS}


def test_pool_takes_every_setting_the_command_takes_under_the_same_name():
    assert sorted(_pool_settings()) == sorted(_native.SETTINGS)
    # The command this package carries, as a user sees it.
    help_text = subprocess.run(
        [sys.executable, "-m", "wasmpool", "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    missing = [name for name in _native.SETTINGS if f"--{name.replace('_', '-')}" not in help_text]
    assert not missing, f"settings that `wasmpool run` does not take: {missing}"


def test_pool_defaults_are_the_librarys_and_the_commands():
    defaults = json.loads(_native.DEFAULT_SETTINGS)
    assert sorted(defaults) == sorted(_native.SETTINGS)
    for name, parameter in _pool_settings().items():
        given = parameter.default
        if name == "initargs":
            given = _native.dumps(list(given))
        elif isinstance(given, tuple):
            given = list(given)
        assert given == defaults[name], f"{name}: Pool's default {parameter.default!r}, the library's {defaults[name]!r}"


@pytest.mark.parametrize(
    "settings, setting, exception",
    [
        (dict(max_memory="64MiB"), "max_memory", TypeError),
        (dict(workers=True), "workers", TypeError),
        (dict(max_memory=100), "max_memory", ConfigError),
        (dict(workers=0), "workers", ConfigError),
        (dict(deadline=-1), "deadline", ConfigError),
        (dict(fuel=0), "fuel", ConfigError),
        (dict(chunk_size=0), "chunk_size", ConfigError),
        (dict(initargs=(1,)), "initargs", ConfigError),
        (dict(cache=False, cache_dir="/tmp"), "cache_dir", ConfigError),
        (dict(deadline=1.0, interruptible=False), "interruptible", ConfigError),
        (dict(allow_env=["WASMPOOL_SURELY_NOT_SET_ANYWHERE"]), "allow_env", ConfigError),
        (dict(allow_dir=["/definitely/not/here"]), "allow_dir", ConfigError),
    ],
)
def test_a_setting_that_cannot_work_is_named(module, settings, setting, exception):
    with pytest.raises(exception) as caught:
        Pool(module, **settings)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting) or f": {setting}: " in str(caught.value), str(caught.value)
    assert "line 1 column" not in str(caught.value)


def test_none_is_the_default_of_every_setting(module):
    # As when each setting went to the builder on its own: wrappers pass
    # their own None-defaulted options through.
    with Pool(module, **{name: None for name in _native.SETTINGS}) as pool:
        assert pool.map("sqrt", [4]) == [2.0]


def test_grants_are_checked_in_python_before_the_library():
    with pytest.raises(TypeError, match="allow_env takes a list"):
        Pool("unused.wasm", allow_env="HOME")
    with pytest.raises(TypeError, match=r"allow_dir takes a list of folders, not one: allow_dir=\['data'\]"):
        Pool("unused.wasm", allow_dir="data")
    with pytest.raises(TypeError, match="each folder is a path or a pair"):
        Pool("unused.wasm", allow_write_dir=[("a", "b", "c")])


@python_tasks_available()
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_environment_and_folder_grants_reach_python_tasks(tmp_path, monkeypatch, processes):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("read me")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("WASMPOOL_TEST_SHELL_VALUE", "from the shell")
    grants = dict(
        allow_env={"GREETING": "hello"},
        allow_dir=[(data, "/data")],
        allow_write_dir=[str(out)],
    )
    with Pool(TASKS, workers=1, processes=processes, **grants) as pool:
        assert pool.call("env", "GREETING") == "hello"
        assert pool.call("env", "HOME") is None, "only what is granted"
        assert pool.call("read_text", "/data/in.txt") == "read me"
        assert pool.call("write_text", os.path.join(str(out), "result.txt"), "written") == 7
        with pytest.raises(Exception, match="result.txt"):
            pool.call("write_text", "/data/result.txt", "refused")
    assert (out / "result.txt").read_text() == "written"
    assert not (data / "result.txt").exists()
    with Pool(TASKS, workers=1, processes=processes, allow_env=["WASMPOOL_TEST_SHELL_VALUE"]) as pool:
        assert pool.call("env", "WASMPOOL_TEST_SHELL_VALUE") == "from the shell"
    with Pool(TASKS, workers=1, processes=processes) as pool:
        assert pool.call("env", "GREETING") is None
        with pytest.raises(Exception):
            pool.call("read_text", "/data/in.txt")
