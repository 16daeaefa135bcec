"""The comparison benchmark's Python side: the same workloads as
benches/compare.rs, on Python's multiprocessing.Pool, in pure Python.

Run by `cargo bench --bench compare`; by hand:

    python3 benches/compare_mp.py WORKLOAD RUNS WORKERS [SIZES...]

WORKLOAD is sqrt_chunk1, sqrt_auto, mandelbrot or pi. Prints one line of
JSON: the time of each run in seconds, and an FNV-1a 64 fingerprint of the
results, computed over the same bytes as the Rust side, so that results can
be checked equal across languages before any time is compared.
"""

import json
import math
import multiprocessing
import struct
import sys
import time

MASK = (1 << 64) - 1
LEFT, RIGHT, BOTTOM, TOP = -2.2, 0.8, -1.2, 1.2


def fnv1a(chunks):
    h = 0xCBF29CE484222325
    for chunk in chunks:
        for byte in chunk:
            h = ((h ^ byte) * 0x100000001B3) & MASK
    return "%016x" % h


def escape_time(cr, ci, max_iter):
    zr = zi = 0.0
    n = 0
    while n < max_iter:
        zr2, zi2 = zr * zr, zi * zi
        if zr2 + zi2 > 4.0:
            break
        zi = 2.0 * zr * zi + ci
        zr = zr2 - zi2 + cr
        n += 1
    return n


def mandel_row(y, width, height, max_iter):
    """guest-tasks/src/mandelbrot.rs, operation for operation."""
    ci = TOP - (TOP - BOTTOM) * float(y) / float(max(height, 1))
    max_iter = max(max_iter, 1)
    row = bytearray(width)
    for x in range(width):
        cr = LEFT + (RIGHT - LEFT) * float(x) / float(max(width, 1))
        n = escape_time(cr, ci, max_iter)
        row[x] = min(int(255.0 * math.sqrt(float(n) / float(max_iter))), 255)
    return bytes(row)


def pi_hits(samples, seed):
    """guest-tasks/src/monte_carlo.rs (SplitMix64), operation for operation."""
    state = seed & MASK
    hits = 0
    scale = 1.0 / float(1 << 53)
    for _ in range(samples):
        coords = []
        for _ in range(2):
            state = (state + 0x9E3779B97F4A7C15) & MASK
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            z ^= z >> 31
            coords.append(float(z >> 11) * scale)
        x, y = coords
        if x * x + y * y < 1.0:
            hits += 1
    return hits


def run(pool, workload, sizes):
    if workload in ("sqrt_chunk1", "sqrt_auto"):
        (count,) = sizes
        xs = [float(i) for i in range(count)]
        if workload == "sqrt_chunk1":
            roots = pool.map(math.sqrt, xs, chunksize=1)
        else:
            roots = pool.map(math.sqrt, xs)
        return [struct.pack("<d", r) for r in roots]
    if workload == "mandelbrot":
        width, height, max_iter = sizes
        rows = pool.starmap(mandel_row, [(y, width, height, max_iter) for y in range(height)], chunksize=1)
        return rows
    if workload == "pi":
        tasks, samples = sizes
        hits = pool.starmap(pi_hits, [(samples, seed) for seed in range(tasks)], chunksize=1)
        return [struct.pack("<Q", h) for h in hits]
    raise SystemExit("unknown workload " + workload)


def main():
    workload, runs, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sizes = [int(s) for s in sys.argv[4:]]
    times = []
    fingerprint = None
    with multiprocessing.Pool(processes=workers) as pool:
        for _ in range(runs):
            start = time.perf_counter()
            chunks = run(pool, workload, sizes)
            times.append(time.perf_counter() - start)
            if fingerprint is None:
                fingerprint = fnv1a(chunks)
    print(json.dumps({"times": times, "fingerprint": fingerprint}))


if __name__ == "__main__":
    main()
