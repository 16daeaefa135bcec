//! Estimates π with many independent Monte-Carlo tasks.
//!
//! ```text
//! cargo run --release --example monte_carlo_pi -- [TASKS SAMPLES_PER_TASK]
//! ```
//!
//! Each task draws from its own generator (`wasmpool_guest::rng()`), keyed
//! with a seed the pool derives from its own seed and the task's index, so
//! the streams differ from task to task and the result depends on the pool
//! seed alone: rerun with the `SEED=…` it prints and any `WORKERS=n`, on
//! any platform, and the digits are the same.

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
    if let Ok(seed) = std::env::var("SEED") {
        builder = builder.seed(seed.parse().context("SEED must be a number")?);
    }
    let pool = builder.build()?;

    let started = Instant::now();
    let hits: Vec<u64> = pool.map("pi_hits_seeded", std::iter::repeat_n(samples, tasks as usize))?;
    let elapsed = started.elapsed();

    let total = (tasks * samples) as f64;
    let pi = 4.0 * hits.iter().sum::<u64>() as f64 / total;
    println!("pi ≈ {pi:.8} (error {:+.2e}) from {tasks} tasks × {samples} samples", pi - std::f64::consts::PI);
    println!("seed {0} (repeat with SEED={0})", pool.seed());
    println!(
        "{} workers, {:.2} s, {:.1} M samples/s",
        pool.workers(),
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64() / 1e6
    );
    Ok(())
}
