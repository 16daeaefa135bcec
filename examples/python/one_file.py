"""Hinsen's slide as one script: the functions, the pool and the maps in
one file, with no `if __name__ == "__main__":` guard, and the pool made
before the functions it runs. The script is its own tasks module
(`Pool(__file__)`): every worker loads all of it, so every function exists
wherever it is defined (docs/python.md, "One file").

    pip install "wasmpool[python-tasks]"     # or: pip install ./python componentize-py
    python examples/python/one_file.py
"""
import math
import random

from wasmpool import Pool

with Pool(__file__, workers=2, seed=7) as pool:
    roots = pool.map("sqrt", range(100))           # defined below: by its name
    hits = pool.map("pi_hits", [20_000] * 8)
    print("square roots:", [round(r, 3) for r in roots[:5]], "...")
    print(f"pi is about {4 * sum(hits) / 160_000:.4f} (the same with any worker count, for seed 7)")


def sqrt(x):
    return math.sqrt(x)


def pi_hits(samples):
    # `random` is seeded per input: no two inputs draw the same numbers.
    return sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(samples))
