"""Hinsen's slide from Python with Rust tasks, against its baselines, in one
run (docs/benchmarks.md, "Hinsen's slide from Python"):

1. ``pool.map("sqrt", range(5000))`` against
   ``multiprocessing.Pool(W).map(math.sqrt, range(5000))``;
2. the same map over ``range(1_000_000)`` against the same map run from
   Rust (``cargo bench --bench map_rate``: typed, as ``benches/compare.rs``
   measures it, and through the JSON entry point the package calls);
3. ``imap`` read through a tqdm bar against ``map``.

    python benches/python/hinsen.py [--workers W] [--repeats R] [--count N]

Needs the package with a release build of its extension (``pip install
./python``; or ``cargo build --release -p wasmpool-python`` and
``target/release/lib_native.so`` copied to
``python/wasmpool/_native.abi3.so``, with ``PYTHONPATH=python``), the demo
module (``cargo build --release -p guest-tasks``), cargo (for the Rust
rate), and tqdm. Every wasmpool row uses the default settings unless it
says otherwise; times are medians of R runs.
"""

import argparse
import math
import multiprocessing
import os
import subprocess
import sys

from timing import DEMO_MODULE, REPO, median_time
from wasmpool import Pool


def rust_rates(count, workers, repeats):
    """The Rust map's medians (typed, JSON) from `cargo bench --bench map_rate`."""
    command = ["cargo", "bench", "--quiet", "--bench", "map_rate", "--", str(DEMO_MODULE), "--count", str(count),
               "--workers", str(workers), "--runs", str(repeats)]
    out = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
    times = dict(line.split() for line in out.splitlines() if line.split()[:1] in (["typed"], ["json"]))
    return float(times["typed"]), float(times["json"])


def row(name, seconds, base, count):
    ratio = base / seconds
    print(f"  {name:<58} {seconds * 1e3:>10.1f} ms {count / seconds / 1e6:>7.2f} M/s {ratio:>7.2f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs of the large map")
    args = parser.parse_args()
    workers, repeats, count = args.workers, args.repeats, args.count
    from tqdm import tqdm

    print(f"{workers} workers, median of {repeats} runs; Python {sys.version.split()[0]}, "
          f"multiprocessing start method {multiprocessing.get_start_method()!r}")
    mp = multiprocessing.Pool(workers)
    pool = Pool(DEMO_MODULE, workers=workers, seed=1)
    kept = Pool(DEMO_MODULE, workers=workers, seed=1, fresh_state=False)
    try:
        small = range(5000)
        expected = [math.sqrt(x) for x in small]
        for p in (pool, kept):
            assert p.map("sqrt", small) == expected
        base = median_time(lambda: mp.map(math.sqrt, small), repeats)
        print("\n1. map('sqrt', range(5000)) (ratio: speed against multiprocessing)")
        row(f"multiprocessing.Pool({workers}).map(math.sqrt, ...)", base, base, len(small))
        row("wasmpool, Rust tasks (default: a fresh state per input)",
            median_time(lambda: pool.map("sqrt", small), repeats), base, len(small))
        row("wasmpool, Rust tasks, fresh_state=False",
            median_time(lambda: kept.map("sqrt", small), repeats), base, len(small))

        large = range(count)
        typed, json_map = rust_rates(count, workers, min(repeats, 3))
        python = median_time(lambda: pool.map("sqrt", large), min(repeats, 3))
        print(f"\n2. map('sqrt', range({count:,})) (ratio: speed against the typed map from Rust)")
        row("from Rust, typed (benches/compare.rs's rate)", typed, typed, count)
        row("from Rust, JSON entry point", json_map, typed, count)
        row("from Python", python, typed, count)
        print(f"  Python adds {100 * (python / typed - 1):+.1f} % to the typed map, "
              f"{100 * (python / json_map - 1):+.1f} % to the JSON one")

        with open(os.devnull, "w") as sink:
            bar = median_time(lambda: [None for _ in tqdm(pool.imap("sqrt", large), file=sink, mininterval=0.1)],
                              min(repeats, 3))
        plain = median_time(lambda: list(pool.imap("sqrt", large)), min(repeats, 3))
        print(f"\n3. imap('sqrt', range({count:,})) (ratio: speed against map, measured above)")
        row("map", python, python, count)
        row("imap, read by a list", plain, python, count)
        row("imap, read through tqdm (to /dev/null)", bar, python, count)
        print(f"  imap with tqdm costs {100 * (bar / python - 1):+.1f} % over map")
    finally:
        mp.terminate()
        pool.close()
        kept.close()


if __name__ == "__main__":
    main()
