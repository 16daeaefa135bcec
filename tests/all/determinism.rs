//! Reproducible randomness: with the same pool seed, seeded tasks give the
//! same bytes whatever the number of workers, their kind (threads or
//! processes), the chunk size, the instance mode or the order tasks ran in;
//! every task of a map draws its own stream; and a task's seed can be
//! computed outside the pool to replay one input natively.

use crate::common;

use guest_tasks::monte_carlo::{pi_hits_seeded, random_walk};
use std::collections::HashSet;
use wasmpool::task_seed;
use wasmpool::{ChunkSize, InstanceMode, Pool, WorkerKind};

const SEED: u64 = 2026;
/// Inputs per map: more than 4 workers × a few chunks, not a multiple of 4.
const INPUTS: usize = 50;
const SAMPLES: u64 = 20_000;
const STEPS: u32 = 2_000;

fn pool(kind: WorkerKind, workers: usize, seed: u64) -> Pool {
    Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .worker_kind(kind)
        .workers(workers)
        .seed(seed)
        .build()
        .expect("the demo pool builds")
}

/// The Monte-Carlo π counts and the random walks of one pool, as bytes.
fn run(pool: &Pool, chunk: ChunkSize) -> (Vec<u8>, Vec<u8>) {
    let hits: Vec<u64> =
        pool.task("pi_hits_seeded").unwrap().chunk_size(chunk).map(vec![SAMPLES; INPUTS]).expect("pi_hits_seeded");
    let walks: Vec<(f64, f64)> =
        pool.task("random_walk").unwrap().chunk_size(chunk).map(vec![STEPS; INPUTS]).expect("random_walk");
    (postcard::to_allocvec(&hits).unwrap(), postcard::to_allocvec(&walks).unwrap())
}

each_kind! {
    fn the_same_seed_gives_the_same_bytes_for_any_workers_kind_and_chunking(kind) {
        let reference = run(&pool(WorkerKind::Threads, 1, SEED), ChunkSize::from(1));
        for workers in [1, 2, 4] {
            let pool = pool(kind, workers, SEED);
            for chunk in [ChunkSize::from(1), ChunkSize::from(7), ChunkSize::Auto] {
                assert!(
                    run(&pool, chunk) == reference,
                    "{kind:?}, {workers} workers, chunk {chunk:?}: results differ from 1 thread worker, chunk 1"
                );
            }
        }
    }
}

#[test]
fn unordered_maps_and_kept_instances_draw_the_same_numbers() {
    let reference: Vec<u64> = pool(WorkerKind::Threads, 1, SEED).map("pi_hits_seeded", vec![SAMPLES; INPUTS]).unwrap();

    // Completion order: each result still belongs to its index's stream.
    let pool4 = pool(WorkerKind::Threads, 4, SEED);
    let mut unordered: Vec<(usize, u64)> = pool4
        .task("pi_hits_seeded")
        .unwrap()
        .chunk_size(1)
        .imap_unordered(vec![SAMPLES; INPUTS])
        .unwrap()
        .map(|(index, result)| (index, result.expect("pi_hits_seeded")))
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered.into_iter().map(|(_, hits)| hits).collect::<Vec<_>>(), reference);

    // One instance per worker, reused by every task it runs.
    let kept = Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(3)
        .instance_mode(InstanceMode::PerWorker)
        .seed(SEED)
        .build()
        .unwrap();
    let hits: Vec<u64> = kept.map("pi_hits_seeded", vec![SAMPLES; INPUTS]).unwrap();
    assert_eq!(hits, reference);
}

#[test]
fn every_task_draws_its_own_stream_and_another_seed_changes_them() {
    let pool = pool(WorkerKind::Threads, 2, SEED);
    let walks: Vec<(f64, f64)> = pool.map("random_walk", vec![STEPS; INPUTS]).unwrap();
    let ends: HashSet<u64> = walks.iter().map(|(end, _)| end.to_bits()).collect();
    assert_eq!(ends.len(), INPUTS, "two tasks of one map drew the same stream");

    let other: Vec<(f64, f64)> =
        self::pool(WorkerKind::Threads, 2, SEED + 1).map("random_walk", vec![STEPS; INPUTS]).unwrap();
    assert!(
        walks.iter().zip(&other).all(|(a, b)| a.0.to_bits() != b.0.to_bits()),
        "seed {SEED} and {} share a stream",
        SEED + 1
    );
}

#[test]
fn a_call_may_set_its_own_seed() {
    let pool = pool(WorkerKind::Threads, 2, 1);
    let own: Vec<u64> = pool.task("pi_hits_seeded").unwrap().seed(SEED).map(vec![SAMPLES; 8]).unwrap();
    let seeded_pool: Vec<u64> =
        self::pool(WorkerKind::Threads, 2, SEED).map("pi_hits_seeded", vec![SAMPLES; 8]).unwrap();
    assert_eq!(own, seeded_pool);
    let pools_own: Vec<u64> = pool.map("pi_hits_seeded", vec![SAMPLES; 8]).unwrap();
    assert_ne!(own, pools_own);

    // A single call is index 0 of its map.
    let single: u64 = pool.task("pi_hits_seeded").unwrap().seed(SEED).call(SAMPLES).unwrap();
    assert_eq!(single, own[0]);
}

#[test]
fn one_input_replays_natively_with_its_task_seed() {
    let pool = pool(WorkerKind::Threads, 2, SEED);
    let hits: Vec<u64> = pool.map("pi_hits_seeded", vec![SAMPLES; 10]).unwrap();
    for (index, &pooled) in hits.iter().enumerate() {
        let seed = task_seed(SEED, "pi_hits_seeded", index as u64);
        let native = wasmpool_guest::with_seed(seed, || pi_hits_seeded(SAMPLES));
        assert_eq!(native, pooled, "input {index}");
    }
    // The walk's bits may differ natively (the host's libm is not the
    // module's), but the numbers it drew are the same.
    let walk: (f64, f64) = pool.task("random_walk").unwrap().call(STEPS).unwrap();
    let native = wasmpool_guest::with_seed(task_seed(SEED, "random_walk", 0), || random_walk(STEPS));
    assert!((walk.0 - native.0).abs() < 1e-6 && (walk.1 - native.1).abs() < 1e-6, "{walk:?} vs {native:?}");
}

#[test]
fn a_pool_reports_its_seed_and_draws_a_new_one_by_default() {
    assert_eq!(pool(WorkerKind::Threads, 1, SEED).seed(), SEED);
    let a = common::demo_pool(1).seed();
    let b = common::demo_pool(1).seed();
    assert_ne!(a, b, "two pools without a seed drew the same one");
    // The reported seed repeats the run.
    let unseeded = common::demo_pool(2);
    let first: Vec<u64> = unseeded.map("pi_hits_seeded", vec![SAMPLES; 8]).unwrap();
    let again: Vec<u64> =
        pool(WorkerKind::Threads, 2, unseeded.seed()).map("pi_hits_seeded", vec![SAMPLES; 8]).unwrap();
    assert_eq!(first, again);
}
