//! Thread workers and process workers side by side: the per-task round trip,
//! a fine-grained map, and the cold start of a 2-worker pool to its first
//! result.
//!
//! ```text
//! cargo bench --bench threads_vs_processes
//! ```
//!
//! Figures and how to read them: docs/benchmarks.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use wasmpool::{Pool, WorkerKind};

const KINDS: [(&str, WorkerKind); 2] = [("threads", WorkerKind::Threads), ("processes", WorkerKind::Processes)];

fn pool(kind: WorkerKind) -> Pool {
    pool_of(kind, 2)
}

fn pool_of(kind: WorkerKind, workers: usize) -> Pool {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(workers).worker_kind(kind).build().expect("pool builds")
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    for (name, kind) in KINDS {
        let pool = pool(kind);
        group.bench_function(BenchmarkId::new("call_add", name), |b| {
            b.iter(|| pool.call::<_, i64>("add", black_box((1i64, 2i64))).expect("add"))
        });
    }
    group.finish();
}

fn fine_grained_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_1000_add");
    group.throughput(Throughput::Elements(1000));
    // Two workers keep both cores busy; one leaves a core for the host's
    // side of each exchange, so its latency shows.
    for (name, kind) in KINDS {
        for workers in [2, 1] {
            let pool = pool_of(kind, workers);
            let id =
                if workers == 2 { BenchmarkId::new("auto_chunks", name) } else { BenchmarkId::new("1_worker", name) };
            group.bench_function(id, |b| {
                b.iter(|| pool.map::<_, i64>("add", (0..1000i64).map(|i| (i, 1i64))).expect("map"))
            });
        }
    }
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let mut group = c.benchmark_group("cold_start_to_first_result");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, kind) in KINDS {
        // The module cache is warm after the first build, as it is for every
        // run of a program but its very first.
        drop(pool(kind));
        group.bench_function(BenchmarkId::new("2_workers", name), |b| {
            b.iter(|| {
                let pool = pool(kind);
                pool.call::<_, f64>("sqrt", 2.0f64).expect("sqrt")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = round_trip, fine_grained_map, cold_start
}
criterion_main!(benches);
