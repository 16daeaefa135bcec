//! What bit-identical NaNs cost, side by side: the same maps on a pool with
//! the default (`canonicalize_nans(true)`: the module rewritten so that
//! every NaN that can be observed gets canonical bits) and on one with the
//! CPU's NaNs (`canonicalize_nans(false)`), alternated run by run, results
//! checked equal first (the inputs make no NaN). Thread workers, 2 of them.
//!
//! ```text
//! cargo bench --bench nan_cost                 # 5 runs of each
//! cargo bench --bench nan_cost -- --runs 9
//! cargo bench --bench nan_cost -- --opt-out reset   # against reset_in_place(false) instead
//! ```
//!
//! With `--opt-out reset` the other pool keeps canonical NaNs but creates
//! a new instance per task (`reset_in_place(false)`), so its code has no
//! write marks: the rows then show what the marks cost compute-bound maps
//! (and what resets save them), and the load row what the marks' rewrite
//! adds to loading.
//!
//! Workloads: a map that stores every float it computes (`normalize` of
//! vectors, whose every element is divided, stored and encoded), a float
//! loop that keeps its floats in locals (`oscillator`) and Mandelbrot rows
//! (floats in locals, bytes stored). Last, what the rewrite adds to loading:
//! building a 1-worker pool of the demo module with the cache off.

#[path = "common/runs.rs"]
mod runs;

use std::time::{Duration, Instant};
use wasmpool::Pool;

/// The guarantee whose opt-out the default is measured against.
#[derive(Clone, Copy, PartialEq)]
enum OptOut {
    /// `canonicalize_nans(false)`.
    Nans,
    /// `reset_in_place(false)`.
    Reset,
}

fn builder(default: bool, opt_out: OptOut) -> wasmpool::PoolBuilder {
    Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .canonicalize_nans(default || opt_out != OptOut::Nans)
        .reset_in_place(default || opt_out != OptOut::Reset)
}

fn pool(default: bool, opt_out: OptOut) -> Pool {
    builder(default, opt_out).workers(2).seed(7).build().expect("the pool builds")
}

/// One workload: runs its map on `pool` and returns its result as bytes.
struct Workload {
    name: &'static str,
    run: fn(&Pool) -> Vec<u8>,
}

fn normalize(pool: &Pool) -> Vec<u8> {
    let inputs = (0..200u32).map(|i| (0..50_000u32).map(|j| f64::from(i * 7 + j % 1000) - 499.5).collect::<Vec<f64>>());
    let out: Vec<Vec<f64>> = pool.map("normalize", inputs).expect("normalize");
    out.iter().flatten().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

fn oscillator(pool: &Pool) -> Vec<u8> {
    let out: Vec<(f64, f64)> =
        pool.map("oscillator", (0..200u32).map(|i| (1_000_000u32, 0.001 + f64::from(i) * 1e-6))).expect("oscillator");
    out.iter().flat_map(|(a, b)| [a.to_bits(), b.to_bits()]).flat_map(u64::to_le_bytes).collect()
}

fn mandelbrot(pool: &Pool) -> Vec<u8> {
    let out: Vec<Vec<u8>> = pool.map("mandel_row", (0..1000u32).map(|y| (y, 1000u32, 1000u32, 256u32))).expect("rows");
    out.concat()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runs = runs::runs(5);
    let args: Vec<String> = std::env::args().collect();
    let opt_out = match args.iter().position(|a| a == "--opt-out").and_then(|i| args.get(i + 1)).map(String::as_str) {
        Some("reset") => OptOut::Reset,
        _ => OptOut::Nans,
    };
    let (canonical, cpu) = (pool(true, opt_out), pool(false, opt_out));
    let workloads = [
        Workload { name: "normalize 200 × 50,000 floats (stores every float)", run: normalize },
        Workload { name: "oscillator 200 × 1,000,000 steps (floats in locals)", run: oscillator },
        Workload { name: "Mandelbrot 1000², 256 iter., row per task", run: mandelbrot },
    ];
    let other = if opt_out == OptOut::Nans { "CPU NaNs" } else { "new inst." };
    println!("2 thread workers, median of {runs} runs each, alternated; default against the opt-out ({other})");
    println!("{:<55} {:>12} {:>12} {:>8}", "workload", "default", other, "cost");
    for workload in &workloads {
        assert!((workload.run)(&canonical) == (workload.run)(&cpu), "{}: the two pools disagree", workload.name);
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            for (pool, times) in [(&canonical, &mut with), (&cpu, &mut without)] {
                let started = Instant::now();
                std::hint::black_box((workload.run)(pool));
                times.push(started.elapsed());
            }
        }
        row(workload.name, median(with), median(without));
    }
    let build = |default: bool| {
        let started = Instant::now();
        let pool = builder(default, opt_out).workers(1).disable_cache().build().expect("the pool builds");
        drop(pool);
        started.elapsed()
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        with.push(build(true));
        without.push(build(false));
    }
    row("building a 1-worker pool, no cache (load time)", median(with), median(without));
}

fn row(name: &str, default: Duration, cpu: Duration) {
    println!(
        "{:<55} {:>10.1}ms {:>10.1}ms {:>+7.1}%",
        name,
        default.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        (default.as_secs_f64() / cpu.as_secs_f64() - 1.0) * 100.0
    );
}
