"""Tasks written in Python on wasmpool against the same functions on
Python's multiprocessing.Pool, and Rust tasks called from Python, side by
side in one run (docs/benchmarks.md, "Tasks written in Python").

    python benches/python/tasks_vs_multiprocessing.py [--workers N] [--repeats R]

Needs the wasmpool package with a release build of its extension
(`pip install ./python`; or `cargo build --release -p wasmpool-python` and
the library copied to python/wasmpool/_native.abi3.so, with PYTHONPATH=python),
componentize-py, and the demo module (`cargo build --release -p guest-tasks`)
for the Rust column. Prints one table per workload: the median wall time of
each mode over R runs, and its ratio to multiprocessing.Pool's.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_tasks  # noqa: E402  (the functions multiprocessing pickles by name)
from timing import DEMO_MODULE, median_time  # noqa: E402
from wasmpool import Pool  # noqa: E402

TASKS = HERE / "bench_tasks.py"
RUST = DEMO_MODULE


def table(title, rows, baseline):
    print(f"\n{title}")
    print(f"  {'mode':<52} {'median':>12} {'speed vs mp':>12}")
    base = rows[baseline]
    for name, seconds in rows.items():
        ratio = base / seconds
        shown = f"{ratio:.2f}x" if ratio >= 0.1 else f"1/{1 / ratio:,.0f}"
        print(f"  {name:<52} {seconds * 1e3:>9.1f} ms {shown:>12}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workers, repeats = args.workers, args.repeats
    method = multiprocessing.get_start_method()
    print(f"{workers} workers, median of {repeats} runs; Python {sys.version.split()[0]}, "
          f"multiprocessing start method {method!r}")

    # Fixed costs: the build (componentize-py), the first pool (compiling
    # the component), a later pool (both from their caches).
    from wasmpool import _build

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        _build.build(TASKS, out=Path(cache) / "tasks.wasm", cache_dir=False)
        build = time.perf_counter() - started
        _build.build(TASKS)  # into the package's cache, if not there yet
        started = time.perf_counter()
        with Pool(TASKS, workers=workers, cache_dir=cache) as pool:
            pool.call("sqrt", 4)
        first = time.perf_counter() - started
        later = median_time(lambda: Pool(TASKS, workers=workers, cache_dir=cache).close(), repeats)
        # The edit-run loop: a student edits the module, then maps once:
        # a new build, and a compile helped by the functions compiled above.
        # The edit is new in every run (a build of it is never cached).
        edited = Path(cache) / "bench_tasks.py"
        edited.write_text(TASKS.read_text() + f"\n\ndef twice(x):\n    return 2 * x  # edit {time.time_ns()}\n")
        started = time.perf_counter()
        with Pool(edited, workers=workers, cache_dir=cache) as pool:
            pool.map("twice", [1])
        edit_loop = time.perf_counter() - started
    started_mp = median_time(lambda: _mp_start(workers), repeats)
    print(f"\nfixed costs: building bench_tasks.py {build:.1f} s (once; cached by content); "
          f"first pool {first:.1f} s (compiling the component; cached); later pools {later * 1e3:.0f} ms; "
          f"multiprocessing.Pool start {started_mp * 1e3:.0f} ms; "
          f"after an edit, build to first result {edit_loop:.1f} s")

    mp = multiprocessing.Pool(workers)
    py_threads = Pool(TASKS, workers=workers, seed=1)
    py_procs = Pool(TASKS, workers=workers, seed=1, processes=True)
    rust = Pool(RUST, workers=workers, seed=1) if RUST.is_file() else None
    one = Pool(TASKS, workers=1, seed=1)
    py_kept = Pool(TASKS, workers=workers, seed=1, fresh_state=False)
    try:
        # One call at a time: the latency of a fresh instance and a call.
        calls = 200
        per_call = median_time(lambda: [one.call("sqrt", 2.0) for _ in range(calls)], repeats) / calls
        kept = Pool(TASKS, workers=1, seed=1, fresh_state=False)
        per_kept = median_time(lambda: [kept.call("sqrt", 2.0) for _ in range(calls)], repeats) / calls
        kept.close()
        print(f"\none call at a time (pool.call('sqrt', 2.0), 1 worker): {per_call * 1e3:.2f} ms per call "
              f"with a fresh state each (the default), {per_kept * 1e3:.3f} ms in a kept instance "
              f"(fresh_state=False)")

        xs = list(range(5_000))
        rows = {
            "plain Python, one process": median_time(lambda: [bench_tasks.sqrt(x) for x in xs], repeats),
            f"multiprocessing.Pool({workers}).map": median_time(lambda: mp.map(bench_tasks.sqrt, xs), repeats),
            "wasmpool, Python tasks, threads": median_time(lambda: py_threads.map("sqrt", xs), repeats),
            "wasmpool, Python tasks, 1 thread worker": median_time(lambda: one.map("sqrt", xs), repeats),
            "wasmpool, Python tasks, processes": median_time(lambda: py_procs.map("sqrt", xs), repeats),
            "wasmpool, Python tasks, threads, fresh_state=False": median_time(
                lambda: py_kept.map("sqrt", xs), repeats),
        }
        if rust:
            rows["wasmpool, Rust tasks, threads"] = median_time(lambda: rust.map("sqrt", xs), repeats)
        table(f"fine-grained: sqrt over {len(xs):,} inputs", rows, f"multiprocessing.Pool({workers}).map")
        scaling = rows["wasmpool, Python tasks, 1 thread worker"] / rows["wasmpool, Python tasks, threads"]
        print(f"  {workers} thread workers against 1 (Python tasks, fresh state): {scaling:.2f}x")

        samples = [200_000] * 16
        rows = {
            "plain Python, one process": median_time(lambda: [bench_tasks.pi_hits(n) for n in samples], repeats),
            f"multiprocessing.Pool({workers}).map": median_time(lambda: mp.map(bench_tasks.pi_hits, samples), repeats),
            "wasmpool, Python tasks, threads": median_time(lambda: py_threads.map("pi_hits", samples), repeats),
            "wasmpool, Python tasks, processes": median_time(lambda: py_procs.map("pi_hits", samples), repeats),
        }
        if rust:
            rows["wasmpool, Rust tasks, threads"] = median_time(lambda: rust.map("pi_hits_seeded", samples), repeats)
        table("compute-bound: pi_hits(200,000) x 16", rows, f"multiprocessing.Pool({workers}).map")
    finally:
        mp.terminate()
        for pool in (py_threads, py_procs, rust, one, py_kept):
            if pool is not None:
                pool.close()


def _mp_start(workers):
    pool = multiprocessing.Pool(workers)
    pool.map(bench_tasks.sqrt, [1.0] * workers)
    pool.terminate()


if __name__ == "__main__":
    main()
