//! How a compute-bound map scales from one thread worker to one per core:
//! the issue's Mandelbrot map (2000 × 2000, 256 iterations, one row per
//! task), on a 1-worker pool and on a pool with a worker per core, the two
//! runs interleaved so that a noisy neighbour slows both alike. Prints the
//! best and the median of each and their ratios, with chunk size 1 (the
//! issue's setting) and 8.
//!
//! ```text
//! cargo bench --bench scaling              # 7 interleaved rounds
//! cargo bench --bench scaling -- --runs 3
//! ```

#[path = "common/runs.rs"]
mod runs;
use std::time::{Duration, Instant};
use wasmpool::Pool;

const SIZE: u32 = 2000;
const MAX_ITER: u32 = 256;
const CHUNKS: [usize; 2] = [1, 8];

fn mandelbrot(pool: &Pool, chunk: usize) -> Duration {
    let task = pool.task("mandel_row").expect("mandel_row").chunk_size(chunk);
    let start = Instant::now();
    let rows: Vec<Vec<u8>> = task.map((0..SIZE).map(|y| (y, SIZE, SIZE, MAX_ITER))).expect("mandelbrot map");
    let elapsed = start.elapsed();
    let expected = guest_tasks::mandelbrot::mandel_row(SIZE / 2, SIZE, SIZE, MAX_ITER);
    assert_eq!(rows[(SIZE / 2) as usize], expected, "the middle row differs from native code");
    elapsed
}

fn main() {
    let runs = runs::runs(7);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let build = |workers| Pool::builder().module_file(guest_tasks::WASM_PATH).workers(workers).build().expect("pool");
    let (one, all) = (build(1), build(cores));
    // times[pool][chunk]
    let mut times = vec![vec![Vec::new(); CHUNKS.len()]; 2];
    for _ in 0..runs {
        for (p, pool) in [&one, &all].into_iter().enumerate() {
            for (c, &chunk) in CHUNKS.iter().enumerate() {
                times[p][c].push(mandelbrot(pool, chunk));
            }
        }
    }
    println!("# Mandelbrot {SIZE}², {MAX_ITER} iter.: 1 worker against {cores}, {runs} interleaved rounds\n");
    println!(
        "| chunk size | 1 worker: best / median | {cores} workers: best / median | scaling (best) | scaling (median) |"
    );
    println!("|---|---|---|---|---|");
    for (c, chunk) in CHUNKS.iter().enumerate() {
        let stats = |p: usize| {
            let mut t = times[p][c].clone();
            t.sort();
            (t[0], t[t.len() / 2])
        };
        let ((best1, median1), (best_n, median_n)) = (stats(0), stats(1));
        println!(
            "| {chunk} | {best1:.1?} / {median1:.1?} | {best_n:.1?} / {median_n:.1?} | {:.2}× | {:.2}× |",
            best1.as_secs_f64() / best_n.as_secs_f64(),
            median1.as_secs_f64() / median_n.as_secs_f64()
        );
    }
}
