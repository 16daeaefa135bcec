"""Hinsen's two bugs ("Teaching parallel computing in Python"), each
reproduced with multiprocessing (spawn start method, as on Windows and
macOS) and the same program working with wasmpool.

1. ``Pool().map(numpy.sqrt, range(100))``: the function cannot be pickled.
   Today's numpy pickles its ufuncs, so a lambda stands in for it: the
   same error, for the same reason.
2. A function defined after ``Pool()`` is unknown to the workers (forked
   before it existed, or spawned into a fresh interpreter that never runs
   the definition). multiprocessing then loses the task, and the map
   waits forever.

wasmpool needs no ``if __name__ == "__main__"`` guard and has no
definition order: the tasks are the module's, loaded whole by every worker.
"""

import sys
import textwrap

import pytest

from scripts import Script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kills process groups with os.killpg (POSIX)")

UNPICKLABLE = textwrap.dedent(
    """
    import multiprocessing
    if __name__ == "__main__":
        pool = multiprocessing.get_context("spawn").Pool(2)
        print(pool.map(lambda x: x ** 0.5, range(100)))
    """
)

DEFINED_AFTER_POOL = textwrap.dedent(
    """
    import multiprocessing
    if __name__ == "__main__":
        pool = multiprocessing.get_context("spawn").Pool(2)
        def square(x):
            return x * x
        print(pool.map(square, range(100)))
    """
)

WASMPOOL = textwrap.dedent(
    """
    import sys
    from wasmpool import Pool
    pool = Pool(sys.argv[1], processes=True, workers=2)  # no __main__ guard
    roots = pool.map("sqrt", range(100))
    later = pool.map("defined_last", range(100))  # the module's last item
    print(roots[49], roots[2] == 2 ** 0.5, later[:4], flush=True)
    """
)


def run(tmp_path, program, *args, expect, hangs=False, timeout=60):
    """Runs ``program``, waits for ``expect`` in its output, then for its
    end (or, if it ``hangs`` by design, kills it)."""
    path = tmp_path / "slide.py"
    path.write_text(program)
    script = Script(path, *args)
    seen = False
    try:
        seen = script.wait_for(expect, timeout=timeout)
    finally:
        code, out, err = script.finish(timeout=10 if seen and not hangs else 0.5)
    return seen, code, out, err


def test_multiprocessing_cannot_pickle_the_function(tmp_path):
    seen, code, out, err = run(tmp_path, UNPICKLABLE, expect="pickle")
    assert seen and code != 0, (out, err)
    assert "PicklingError" in err or "AttributeError" in err, err


def test_multiprocessing_loses_a_function_defined_after_pool(tmp_path):
    seen, code, out, err = run(tmp_path, DEFINED_AFTER_POOL, expect="Can't get attribute 'square'", hangs=True)
    assert seen, (code, out, err)
    assert "[0, 1, 4" not in out


def test_the_same_program_works_with_wasmpool(tmp_path, module):
    seen, code, out, err = run(tmp_path, WASMPOOL, str(module), expect="7.0 True")
    assert seen and code == 0, (out, err)
    assert "7.0 True [1, 2, 3, 4]" in out
