//! Criterion micro-benchmarks of the pool's fixed costs: a trivial task
//! call, a round trip with small postcard arguments and result, creating
//! (and resetting) one instance per task, building a pool, and a message
//! from a running task to an `Exchange`.
//!
//! ```text
//! cargo bench --bench micro
//! ```
//!
//! Figures and how to read them: docs/benchmarks.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use wasmpool::{Event, InstanceMode, Pool, WorkerKind};

const KINDS: [(&str, WorkerKind); 2] = [("threads", WorkerKind::Threads), ("processes", WorkerKind::Processes)];

fn pool(kind: WorkerKind, mode: InstanceMode) -> Pool {
    Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(1)
        .worker_kind(kind)
        .instance_mode(mode)
        .build()
        .expect("pool builds")
}

/// `noop()`: no arguments, no result; the pool's own cost per call.
fn trivial_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("trivial_call");
    for (name, kind) in KINDS {
        for (mode_name, mode) in
            [("fresh_instance", InstanceMode::FreshPerTask), ("kept_instance", InstanceMode::PerWorker)]
        {
            let pool = pool(kind, mode);
            group.bench_function(BenchmarkId::new(mode_name, name), |b| {
                b.iter(|| pool.call::<_, ()>("noop", ()).expect("noop"))
            });
        }
    }
    group.finish();
}

/// `echo_mixed` with a small tuple in and out: encoding and decoding too.
fn small_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("small_round_trip");
    for (name, kind) in KINDS {
        let pool = pool(kind, InstanceMode::FreshPerTask);
        let args = (-7i64, "seven".to_string(), vec![1.0f64, 2.5, -3.0], Some(9u8));
        group.bench_function(BenchmarkId::new("echo_mixed", name), |b| {
            b.iter(|| {
                pool.call::<_, (i64, String, Vec<f64>, Option<u8>)>("echo_mixed", black_box(args.clone()))
                    .expect("echo")
            })
        });
    }
    group.finish();
}

/// One task per fresh instance against the same task on a kept instance,
/// in a map of 1000: the difference is the instance's creation and reset.
fn instantiation_per_task(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiation_per_task");
    group.throughput(criterion::Throughput::Elements(1000));
    for (mode_name, mode) in
        [("fresh_instance", InstanceMode::FreshPerTask), ("kept_instance", InstanceMode::PerWorker)]
    {
        let pool = pool(WorkerKind::Threads, mode);
        group.bench_function(BenchmarkId::new("map_1000_noop", mode_name), |b| {
            b.iter(|| pool.map::<_, ()>("noop", vec![(); 1000]).expect("map"))
        });
    }
    group.finish();
}

/// Building a 1-worker pool (module cache warm) and dropping it.
fn pool_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_build");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    for (name, kind) in KINDS {
        drop(pool(kind, InstanceMode::FreshPerTask));
        group.bench_function(BenchmarkId::new("1_worker", name), |b| {
            b.iter(|| drop(pool(kind, InstanceMode::FreshPerTask)))
        });
    }
    group.finish();
}

/// Messages per second from one task to an `Exchange` that takes them as
/// they come (`flood`: 10,000 messages of 16 bytes), against the same task
/// with nobody listening (each `send` returns at once).
fn messages(c: &mut Criterion) {
    const COUNT: u32 = 10_000;
    let mut group = c.benchmark_group("messages");
    group.throughput(Throughput::Elements(u64::from(COUNT)));
    for (name, kind) in KINDS {
        let pool = pool(kind, InstanceMode::FreshPerTask);
        group.bench_function(BenchmarkId::new("to_exchange", name), |b| {
            b.iter(|| {
                let mut exchange = pool.exchange::<Vec<u8>, u32>();
                exchange.start("flood", (COUNT, 16u32)).expect("flood starts");
                let mut received = 0u32;
                for event in &mut exchange {
                    match event {
                        Event::Message { .. } => received += 1,
                        Event::Finished { result, .. } => assert_eq!(result.expect("flood"), COUNT),
                        Event::Progress { .. } => {}
                    }
                }
                assert_eq!(received, COUNT);
            })
        });
        group.bench_function(BenchmarkId::new("nobody_listens", name), |b| {
            b.iter(|| assert_eq!(pool.call::<_, u32>("flood", (COUNT, 16u32)).expect("flood"), 0))
        });
    }
    group.finish();
}

criterion_group!(benches, trivial_call, small_round_trip, instantiation_per_task, pool_build, messages);
criterion_main!(benches);
