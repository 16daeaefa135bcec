"""What the Python bench scripts share: the demo module's path and a
median of wall times."""

import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
# The demo module's release build (`cargo build --release -p guest-tasks`).
DEMO_MODULE = TARGET / "wasm-guest" / "wasm32-unknown-unknown" / "release" / "guest_tasks.wasm"


def median_time(run, repeats):
    """The median wall time of `repeats` calls of `run`, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
