"""Hinsen's slide, working: `Pool().map(sqrt, range(100))`, which fails
with multiprocessing's spawn start method, with tasks written in Python
(tasks.py, beside this file) and in Rust (the demo module, if built).

    pip install ./python componentize-py      # once
    cargo build -p guest-tasks                # the Rust demo module (optional)
    python examples/python/hinsen_slide.py

No `if __name__ == "__main__":` guard is needed: workers never import
this script.
"""
import os
from pathlib import Path

from wasmpool import Pool

HERE = Path(__file__).resolve().parent

with Pool(HERE / "tasks.py", workers=2, seed=7) as pool:
    roots = pool.map("sqrt", range(100))
    print("tasks written in Python:", [round(r, 3) for r in roots[:5]], "...")
    hits = pool.map("pi_hits", [20_000] * 8)
    print(f"  pi is about {4 * sum(hits) / 160_000:.4f} (the same with any worker count, for seed 7)")

target = Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parents[1] / "target")
rust = target / "wasm-guest" / "wasm32-unknown-unknown" / "release" / "guest_tasks.wasm"
if rust.is_file():
    with Pool(rust, workers=2, seed=7) as pool:
        print("tasks written in Rust:  ", [round(r, 3) for r in pool.map("sqrt", range(100))[:5]], "...")
else:
    print(f"(no Rust demo module at {rust}: cargo build -p guest-tasks)")
