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

/// How each task gets its state: the default (a fresh state, the instance
/// reset in place), the opt-out creating an instance per task, and the
/// opt-out keeping one instance per worker.
#[derive(Clone, Copy)]
enum State {
    Fresh,
    NewInstance,
    Kept,
}

const STATES: [(&str, State); 3] = [
    ("fresh_state", State::Fresh),
    ("new_instance_opt_out", State::NewInstance),
    ("kept_instance_opt_out", State::Kept),
];

fn pool(kind: WorkerKind, state: State) -> Pool {
    Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(1)
        .worker_kind(kind)
        .instance_mode(if matches!(state, State::Kept) { InstanceMode::PerWorker } else { InstanceMode::FreshPerTask })
        .reset_in_place(!matches!(state, State::NewInstance))
        .build()
        .expect("pool builds")
}

/// `noop()`: no arguments, no result; the pool's own cost per call.
fn trivial_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("trivial_call");
    for (name, kind) in KINDS {
        for (state_name, state) in STATES {
            let pool = pool(kind, state);
            group.bench_function(BenchmarkId::new(state_name, name), |b| {
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
        let pool = pool(kind, State::Fresh);
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

/// A map of 1000 `noop`s with a fresh state per task (the default: reset
/// in place), a new instance per task and a kept instance: the
/// differences are what giving each task a fresh state costs.
fn instantiation_per_task(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiation_per_task");
    group.throughput(criterion::Throughput::Elements(1000));
    for (state_name, state) in STATES {
        let pool = pool(WorkerKind::Threads, state);
        group.bench_function(BenchmarkId::new("map_1000_noop", state_name), |b| {
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
        drop(pool(kind, State::Fresh));
        group.bench_function(BenchmarkId::new("1_worker", name), |b| b.iter(|| drop(pool(kind, State::Fresh))));
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
        let pool = pool(kind, State::Fresh);
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
