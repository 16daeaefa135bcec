//! What the sandbox's run-time limits cost on a compute-bound kernel: a
//! Mandelbrot map (the issue's 35 % figure for epoch interruption was
//! measured on such a loop), with each way of enforcing a deadline or an
//! instruction budget, against the same pool without limits.
//!
//! ```text
//! cargo bench --bench sandbox_cost
//! ```
//!
//! Figures and how to read them: docs/benchmarks.md ("Sandbox limits").

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;
use wasmpool::{Pool, PoolBuilder, WorkerKind};

/// 64 rows of a 1000-pixel-wide image, 256 iterations: about 40 ms of
/// Wasm per map, in 64 tasks.
const ROWS: u32 = 64;
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
const MAX_ITER: u32 = 256;

fn builder(kind: WorkerKind) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).worker_kind(kind)
}

fn mandelbrot(c: &mut Criterion) {
    let mut group = c.benchmark_group("mandelbrot_64_rows");
    group.throughput(Throughput::Elements(u64::from(ROWS))).sample_size(20);
    let deadline = Duration::from_secs(10);
    let variants: [(&str, PoolBuilder); 6] = [
        ("threads_no_limits", builder(WorkerKind::Threads)),
        ("threads_deadline_epochs", builder(WorkerKind::Threads).deadline(deadline)),
        ("threads_fuel", builder(WorkerKind::Threads).fuel(u64::MAX / 2)),
        ("processes_no_limits", builder(WorkerKind::Processes)),
        ("processes_deadline_watchdog", builder(WorkerKind::Processes).deadline(deadline)),
        ("processes_fuel", builder(WorkerKind::Processes).fuel(u64::MAX / 2)),
    ];
    // The rows are checked equal in every variant before anything is timed.
    let mut reference: Option<Vec<Vec<u8>>> = None;
    for (name, builder) in variants {
        let pool = builder.build().expect("pool builds");
        let rows = || {
            let task = pool.task("mandel_row").expect("task").chunk_size(1);
            task.map::<_, Vec<u8>>((0..ROWS).map(|y| (y * (HEIGHT / ROWS), WIDTH, HEIGHT, MAX_ITER))).expect("map")
        };
        let first = rows();
        match &reference {
            Some(expected) => assert_eq!(&first, expected, "{name} computes other pixels"),
            None => reference = Some(first),
        }
        group.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(rows));
    }
    group.finish();
}

criterion_group!(benches, mandelbrot);
criterion_main!(benches);
