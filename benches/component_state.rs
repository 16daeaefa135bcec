//! What one input of a task component costs in each way of giving it its
//! state, for components given on the command line, side by side in one
//! run (the components alternate, round after round):
//! - a fresh state by resetting the worker's instance in place (the
//!   default on Linux);
//! - a fresh state by a new instance per input (the default where the
//!   reset is not available, and `reset_in_place(false)`);
//! - the worker's kept instance (`InstanceMode::PerWorker`).
//!
//! ```text
//! cargo bench --bench component_state -- tasks-a.wasm tasks-b.wasm [--calls N] [--rounds N]
//! ```
//!
//! Each figure is the best of three runs of N calls of `sqrt(4)` through
//! JSON on one thread worker. Figures and how they were made:
//! docs/benchmarks.md.

use std::time::Instant;
use wasmpool::{InstanceMode, Pool};

/// The three ways, as (name, reset in place, kept instance).
const MODES: [(&str, bool, bool); 3] =
    [("reset in place", true, false), ("new instance", false, false), ("kept instance", true, true)];

fn per_call(path: &str, reset: bool, kept: bool, calls: usize) -> anyhow::Result<f64> {
    let mode = if kept { InstanceMode::PerWorker } else { InstanceMode::FreshPerTask };
    let pool = Pool::builder().module_file(path).workers(1).reset_in_place(reset).instance_mode(mode).build()?;
    let task = pool.task("sqrt")?.json()?;
    for _ in 0..20 {
        task.call("4")?;
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..calls {
            task.call("4")?;
        }
        best = best.min(started.elapsed().as_secs_f64() / calls as f64);
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    let mut paths = Vec::new();
    let (mut calls, mut rounds) = (300, 3);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--calls" => calls = args.next().unwrap_or_default().parse()?,
            "--rounds" => rounds = args.next().unwrap_or_default().parse()?,
            "--bench" => {}
            _ => paths.push(arg),
        }
    }
    if paths.is_empty() {
        // As under a plain `cargo bench`: nothing to compare.
        println!("component_state: give the task components (with a task `sqrt`) to compare; skipped");
        return Ok(());
    }
    for round in 1..=rounds {
        for path in &paths {
            let mut line = format!("round {round}  {path}:");
            for (name, reset, kept) in MODES {
                line += &format!("  {name} {:.1} us", per_call(path, reset, kept, calls)? * 1e6);
            }
            println!("{line}");
        }
    }
    Ok(())
}
