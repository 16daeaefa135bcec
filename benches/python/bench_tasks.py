"""The Python functions benches/python/tasks_vs_multiprocessing.py runs on
multiprocessing.Pool and, as tasks written in Python, on wasmpool."""
import math
import random


def sqrt(x):
    """Fine-grained: one square root per input."""
    return math.sqrt(x)


def pi_hits(samples):
    """Compute-bound: Monte Carlo hits inside the quarter circle."""
    hits = 0
    for _ in range(samples):
        x = random.random()
        y = random.random()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits
