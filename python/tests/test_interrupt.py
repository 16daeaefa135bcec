"""Ctrl-C stops a running map promptly, and no worker process is left."""

import json
import signal
import sys
import textwrap
import time

import pytest

from scripts import Script, alive

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals process groups with os.killpg (POSIX)")

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from wasmpool import Pool

    pool = Pool(sys.argv[1], workers=2, processes=sys.argv[2] == "processes")
    print(json.dumps(pool.worker_pids()), flush=True)
    print("mapping", flush=True)
    pool.map("spin", [2**64 - 1] * 4)  # never ends on its own
    print("finished", flush=True)
    """
)


# A map of short tasks whose results are always there when Python looks:
# no wait times out, so signals are checked every so many results.
FAST = 'pool.map("sqrt", range(10**9))'


# Waiting on an exchange's events instead of a map's results.
EXCHANGE = ('with pool.exchange() as exchange:\n    for _ in range(4):\n        exchange.start("spin", 2**64 - 1)\n'
            '    print("started", flush=True)\n    list(exchange)')


@pytest.mark.parametrize("caught, tasks", [(False, "long"), (True, "long"), (False, "short"), (False, "exchange")],
                         ids=["uncaught", "caught", "short-tasks", "exchange"])
def test_ctrl_c_stops_a_map_and_leaves_no_worker(tmp_path, module, kind, caught, tasks):
    program = PROGRAM
    if tasks == "short":
        program = program.replace('pool.map("spin", [2**64 - 1] * 4)  # never ends on its own', FAST)
    if tasks == "exchange":
        program = program.replace('pool.map("spin", [2**64 - 1] * 4)  # never ends on its own', EXCHANGE)
    if caught:
        # The student's own handler runs, and the pool closes cleanly.
        program = program.replace(
            'pool.map("spin", [2**64 - 1] * 4)  # never ends on its own',
            'try:\n    pool.map("spin", [2**64 - 1] * 4)\nexcept KeyboardInterrupt:\n'
            '    pool.close()\n    print("interrupted", flush=True)\n    sys.exit(3)',
        )
    path = tmp_path / "forever.py"
    path.write_text(program)
    script = Script(path, str(module), kind)
    try:
        assert script.wait_for("mapping", timeout=120), script.finish(0)
        pids = json.loads(script.stdout[0])
        time.sleep(0.5)  # the tasks are running
        pressed = time.monotonic()
        script.signal_group(signal.SIGINT)
        code, out, err = script.finish(timeout=20)
        took = time.monotonic() - pressed
    finally:
        script.kill()
    assert code is not None, f"still running 20 s after Ctrl-C:\n{err}"
    assert took < 10, f"Ctrl-C took {took:.1f} s"
    if caught:
        assert code == 3 and "interrupted" in out, err
    else:
        assert code != 0 and "KeyboardInterrupt" in err, err
    assert "finished" not in out
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "worker processes outlived their pool"
