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
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import bench_tasks  # noqa: E402  (the functions multiprocessing pickles by name)
from wasmpool import Pool  # noqa: E402

TASKS = HERE / "bench_tasks.py"
RUST = REPO / "target" / "wasm-guest" / "wasm32-unknown-unknown" / "release" / "guest_tasks.wasm"


def median_time(run, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def table(title, rows, baseline):
    print(f"\n{title}")
    print(f"  {'mode':<44} {'median':>10} {'vs multiprocessing':>19}")
    base = rows[baseline]
    for name, seconds in rows.items():
        print(f"  {name:<44} {seconds * 1e3:>8.1f} ms {base / seconds:>18.2f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workers, repeats = args.workers, args.repeats
    method = multiprocessing.get_start_method()
    print(f"{workers} workers, median of {repeats} runs; Python {sys.version.split()[0]}, "
          f"multiprocessing start method {method!r}")

    # Fixed costs.
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        with Pool(TASKS, workers=workers, cache_dir=cache) as pool:
            pool.call("sqrt", 4)
        first = time.perf_counter() - started
        # The component is still in the package's cache, the compiled code
        # in `cache`: a later pool's start.
        later = median_time(lambda: Pool(TASKS, workers=workers, cache_dir=cache).close(), repeats)
    started_mp = median_time(lambda: _mp_start(workers), repeats)
    print(f"\npool start: multiprocessing.Pool {started_mp * 1e3:.0f} ms; wasmpool Pool('bench_tasks.py') "
          f"{later * 1e3:.0f} ms from the caches, {first:.1f} s the first time on this machine "
          f"(the component from the package's cache if it was built before, compiled code not)")

    mp = multiprocessing.Pool(workers)
    py_threads = Pool(TASKS, workers=workers, seed=1)
    py_procs = Pool(TASKS, workers=workers, seed=1, processes=True)
    rust = Pool(RUST, workers=workers, seed=1) if RUST.is_file() else None
    one = Pool(TASKS, workers=1, seed=1)
    try:
        # One call at a time: the latency of a fresh instance and a call.
        calls = 200
        per_call = median_time(lambda: [one.call("sqrt", 2.0) for _ in range(calls)], repeats) / calls
        print(f"\none call at a time (pool.call('sqrt', 2.0), 1 worker, warm): {per_call * 1e3:.2f} ms per call")

        xs = list(range(20_000))
        rows = {
            "plain Python, one process": median_time(lambda: [bench_tasks.sqrt(x) for x in xs], repeats),
            f"multiprocessing.Pool({workers}).map": median_time(lambda: mp.map(bench_tasks.sqrt, xs), repeats),
            "wasmpool, Python tasks, threads": median_time(lambda: py_threads.map("sqrt", xs), repeats),
            "wasmpool, Python tasks, processes": median_time(lambda: py_procs.map("sqrt", xs), repeats),
        }
        if rust:
            rows["wasmpool, Rust tasks, threads"] = median_time(lambda: rust.map("sqrt", xs), repeats)
        table(f"fine-grained: sqrt over {len(xs):,} inputs", rows, f"multiprocessing.Pool({workers}).map")

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
        for pool in (py_threads, py_procs, rust, one):
            if pool is not None:
                pool.close()


def _mp_start(workers):
    pool = multiprocessing.Pool(workers)
    pool.map(bench_tasks.sqrt, [1.0] * workers)
    pool.terminate()


if __name__ == "__main__":
    main()
