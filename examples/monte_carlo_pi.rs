//! Estimates π with many independent, explicitly seeded Monte-Carlo tasks.
//!
//! ```text
//! cargo run --release --example monte_carlo_pi -- [TASKS SAMPLES_PER_TASK]
//! ```
//!
//! Each task gets its own seed (its index), so the streams differ from task
//! to task, and the result is the same for any number of workers, on any
//! platform: rerun it with `WORKERS=1` and compare.

use anyhow::Context;
use std::time::Instant;
use wasmpool::Pool;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i)
            .map_or(Ok(default), |s| s.parse().with_context(|| format!("argument {} ({s:?}) is not a number", i + 1)))
    };
    let (tasks, samples) = (number(0, 200)?, number(1, 1_000_000)?);
    let mut builder = Pool::builder().module_file(guest_tasks::WASM_PATH);
    if let Ok(workers) = std::env::var("WORKERS") {
        builder = builder.workers(workers.parse().context("WORKERS must be a number")?);
    }
    let pool = builder.build()?;

    let started = Instant::now();
    let hits: Vec<u64> = pool.map("pi_hits", (0..tasks).map(|seed| (samples, seed)))?;
    let elapsed = started.elapsed();

    let total = (tasks * samples) as f64;
    let pi = 4.0 * hits.iter().sum::<u64>() as f64 / total;
    println!("pi ≈ {pi:.8} (error {:+.2e}) from {tasks} tasks × {samples} samples", pi - std::f64::consts::PI);
    println!(
        "{} workers, {:.2} s, {:.1} M samples/s",
        pool.workers(),
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}
