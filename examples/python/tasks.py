"""Tasks written in Python (examples/python/hinsen_slide.py and the tests): one module, plain functions."""
import math
import random

from wasmpool import progress, send

# Made when the module is built, and so frozen into the component: every
# input still draws its own numbers (the runner reseeds it per input).
_dice = random.Random()


def sqrt(x):
    """The square root."""
    return math.sqrt(x)


def pi_hits(samples: int) -> int:
    import random
    return sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(samples))


def add(a, b):
    return a + b


def boom(x):
    return 1 / x


def now():
    import time
    return time.time()


def hog(megabytes):
    """Holds `megabytes` MiB at once."""
    return len(bytearray(megabytes << 20))


def chatty(lines):
    for line in range(lines):
        print("line", line)
    return lines


_calls = 0


def calls_so_far():
    """How many inputs this instance has run: 1 with a fresh state per input."""
    global _calls
    _calls += 1
    return _calls


def entropy(n):
    """os.urandom: WASI's random, the task's seeded stream."""
    import os
    return os.urandom(n).hex()


def str_hash(text):
    """The interpreter's string hash: fixed by the build."""
    return hash(text)


def digits(n):
    """A whole number of n digits: JSON holds any, Python reads at most 4300 unless told otherwise."""
    import sys
    sys.set_int_max_str_digits(0)
    return 10 ** (n - 1)


def read_text(path):
    """The text of the file at `path` (in a folder the pool grants)."""
    with open(path) as f:
        return f.read()


def write_text(path, text):
    """Writes `text` to the file at `path` (in a folder the pool grants writing)."""
    with open(path, "w") as f:
        return f.write(text)


def env(name):
    """The value of the environment variable `name` (if the pool grants it), or None."""
    import os
    return os.environ.get(name)


def nap(seconds):
    """Sleeps (with the monotonic clock granted)."""
    import time
    time.sleep(seconds)
    return seconds


def rolls(n):
    """n rolls of a die made at import."""
    return [_dice.randint(1, 6) for _ in range(n)]


def leave(status):
    """sys.exit(status): an exception like any other, reported with its status."""
    import sys
    sys.exit(status)


def walk(steps, every):
    """Walks `steps` steps, sending the step count every `every` steps and
    reporting progress: messages and progress from a task written in Python."""
    for step in range(1, steps + 1):
        if step % every == 0:
            send({"step": step})
            progress(step, steps)
    return steps


_table = None


def load_table(size):
    """An init task (Pool(..., initializer="load_table", initargs=(size,))):
    builds the table the inputs look up, once per instance."""
    global _table
    _table = [i * i for i in range(size)]


def extend_table(n):
    """Extends the table the init task built by n entries; returns its length."""
    _table.extend(range(n))
    return len(_table)


def nan_bits():
    """The bits of a NaN made by arithmetic (inf - inf): the CPU's own, but
    for the rewrite that makes them the same on every machine."""
    import struct
    inf = float("inf")
    return struct.pack("<d", inf - inf).hex()


def echo(value):
    """Returns its argument: what a value becomes on its way in and out."""
    return value
