"""CPython inside the component against the host's CPython, on standard
pure-Python kernels (benches/python/kernels.py), side by side in one run
(docs/benchmarks.md, "The interpreter's own speed").

    python benches/python/interpreter_speed.py [--repeats R]

For each kernel: the median time of one call by the host's CPython, and of
one `pool.call` of the same function as a task written in Python (1 thread
worker, the default fresh state; its reset and call cost about 0.2 ms,
nothing beside these timings), then the same with our additions taken
away or added: without epoch checks (`interruptible=False`: no deadline or
cancelling of a running task), with fuel metered (`fuel=`), and without
the NaN rewrite of the component's core modules (`canonicalize_nans=False`). Needs the
wasmpool package with a release build of its extension and componentize-py
(see tasks_vs_multiprocessing.py).
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kernels  # noqa: E402
from tasks_vs_multiprocessing import median_time  # noqa: E402
from wasmpool import Pool  # noqa: E402

KERNELS = [
    ("nbody", 20_000),
    ("spectral_norm", 100),
    ("objects", 600_000),
    ("float_points", 100_000),
    ("generators", 400_000),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    source = HERE / "kernels.py"
    modes = {
        "component (default)": Pool(source, workers=1),
        "without epoch checks": Pool(source, workers=1, interruptible=False),
        "with fuel metered": Pool(source, workers=1, fuel=10**15),
        "without NaN rewrite": Pool(source, workers=1, canonicalize_nans=False),
    }
    print(f"median of {repeats} runs; host Python {sys.version.split()[0]}; one call each")
    print(f"  {'kernel':<16} {'host CPython':>13} " + " ".join(f"{name:>22}" for name in modes))
    try:
        for name, arg in KERNELS:
            native = getattr(kernels, name)
            expected = native(arg)
            host = median_time(lambda: native(arg), repeats)
            cells = []
            for pool in modes.values():
                assert pool.call(name, arg) == expected, f"{name}: not the host's result"
                inside = median_time(lambda: pool.call(name, arg), repeats)
                cells.append(f"{inside * 1e3:>9.1f} ms = {inside / host:>4.2f}x")
            print(f"  {name:<16} {host * 1e3:>10.1f} ms " + " ".join(f"{cell:>22}" for cell in cells))
    finally:
        for pool in modes.values():
            pool.close()


if __name__ == "__main__":
    main()
