//! The sandbox's limits on ordinary Rust tasks (the demo module's
//! `limits.rs`): deadlines, cancellation, fuel, stack, memory and output,
//! in thread workers and worker processes. The attacks of hand-written
//! modules are in `tests/all/hostile/`.

use crate::common;

use std::time::{Duration, Instant};
use wasmpool::{Error, InstanceMode, LimitExceeded, Pool, PoolBuilder, TaskFailure, WorkerKind};

fn pool(kind: WorkerKind) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(1).worker_kind(kind)
}

fn limit(result: wasmpool::Result<impl std::fmt::Debug>) -> LimitExceeded {
    match common::failure(result) {
        TaskFailure::Limit(limit) => limit,
        other => panic!("expected a limit, got: {other}"),
    }
}

each_kind! {
    fn a_task_past_its_deadline_is_stopped_and_its_worker_serves_on(kind) {
        let deadline = common::scaled(Duration::from_millis(300));
        let pool = pool(kind).deadline(deadline).build().unwrap();
        let start = Instant::now();
        assert_eq!(limit(pool.call::<_, u64>("spin", u64::MAX)), LimitExceeded::Deadline { limit: deadline });
        let elapsed = start.elapsed();
        assert!(elapsed >= deadline && elapsed < deadline + Duration::from_secs(5), "{kind:?}: {elapsed:?}");
        // Short tasks are unaffected, on the same (only) worker.
        assert_eq!(pool.call::<_, u64>("spin", 1000u64).unwrap(), guest_tasks::limits::spin(1000));
        assert_eq!(pool.call::<_, f64>("sqrt", 16.0).unwrap(), 4.0);
    }
}

each_kind! {
    fn every_worker_stops_its_task_at_the_deadline(kind) {
        // Thread workers each have their own engine: the deadline thread must
        // reach all of them, not only the first.
        let pool = pool(kind).workers(2).deadline(common::scaled(Duration::from_millis(150))).build().unwrap();
        let results: Vec<Result<u64, _>> =
            pool.task("spin").unwrap().chunk_size(1).map_each([u64::MAX, u64::MAX, u64::MAX, u64::MAX]).unwrap();
        for result in &results {
            let error = result.as_ref().expect_err("an endless task cannot finish");
            assert!(matches!(error.failure, TaskFailure::Limit(LimitExceeded::Deadline { .. })), "{kind:?}: {error}");
        }
        let roots: Vec<u64> = pool.map("spin", [1u64, 2, 3, 4]).unwrap();
        assert_eq!(roots, [1u64, 2, 3, 4].map(guest_tasks::limits::spin));
    }
}

each_kind! {
    fn a_map_with_one_endless_input_loses_only_that_input(kind) {
        // Chunks of one, and one chunk of all: a worker process then has the
        // inputs after the endless one in its pipe when that one is stopped.
        let pool = pool(kind).workers(2).deadline(common::scaled(Duration::from_millis(200))).build().unwrap();
        for chunk in [1, 5] {
            let inputs = [10u64, 20, u64::MAX, 30, 40];
            let results: Vec<Result<u64, _>> = pool.task("spin").unwrap().chunk_size(chunk).map_each(inputs).unwrap();
            for (input, result) in inputs.iter().zip(&results) {
                match result {
                    Ok(value) => assert_eq!(*value, guest_tasks::limits::spin(*input), "{kind:?}, chunk {chunk}"),
                    Err(e) => {
                        assert_eq!(*input, u64::MAX, "{kind:?}, chunk {chunk}: {e}");
                        assert_eq!(e.index, 2);
                        assert!(matches!(e.failure, TaskFailure::Limit(LimitExceeded::Deadline { .. })));
                    }
                }
            }
            assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1, "{kind:?}, chunk {chunk}");
        }
    }
}

each_kind! {
    fn a_per_call_deadline_overrides_the_pool_deadline(kind) {
        let pool = pool(kind).deadline(Duration::from_secs(60)).build().unwrap();
        let short = Duration::from_millis(150);
        let start = Instant::now();
        let result = pool.task("spin").unwrap().deadline(short).call::<_, u64>(u64::MAX);
        assert_eq!(limit(result), LimitExceeded::Deadline { limit: short });
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn a_per_call_deadline_needs_no_pool_deadline_in_worker_processes() {
    // Worker processes need no instrumentation: a per-call deadline works
    // in a pool built without any.
    let pool = pool(WorkerKind::Processes).build().unwrap();
    let result = pool.task("spin").unwrap().deadline(Duration::from_millis(100)).call::<_, u64>(u64::MAX);
    assert!(matches!(limit(result), LimitExceeded::Deadline { .. }));
}

#[test]
fn limits_a_pool_cannot_enforce_are_refused_not_ignored() {
    let plain = pool(WorkerKind::Threads).build().unwrap();
    let e = plain.task("spin").unwrap().deadline(Duration::from_secs(1)).call::<_, u64>(1u64).unwrap_err();
    assert!(matches!(&e, Error::Config(why) if why.contains("interruptible")), "{e}");
    let e = plain.task("spin").unwrap().fuel(1000).call::<_, u64>(1u64).unwrap_err();
    assert!(matches!(&e, Error::Config(why) if why.contains(".fuel(")), "{e}");
    let e = pool(WorkerKind::Threads).deadline(Duration::from_secs(1)).interruptible(false).build().unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    for bad in [pool(WorkerKind::Threads).deadline(Duration::ZERO), pool(WorkerKind::Threads).max_stack(100)] {
        assert!(matches!(bad.build().unwrap_err(), Error::Config(_)));
    }
}

#[test]
fn a_running_task_can_be_cancelled() {
    for (kind, builder) in [
        ("interruptible threads", pool(WorkerKind::Threads).interruptible(true)),
        ("processes", pool(WorkerKind::Processes)),
    ] {
        let pool = builder.build().unwrap();
        let handle = pool.submit::<_, u64>("spin", u64::MAX).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!handle.is_finished(), "{kind}");
        let start = Instant::now();
        handle.cancel();
        assert!(handle.is_finished());
        assert_eq!(handle.wait().unwrap_err().failure, TaskFailure::Cancelled);
        // The task really stopped: the only worker is free again.
        assert_eq!(pool.call::<_, f64>("sqrt", 9.0).unwrap(), 3.0, "{kind}");
        assert!(start.elapsed() < Duration::from_secs(5), "{kind}: {:?}", start.elapsed());
    }
}

#[test]
fn a_cancelled_queued_task_never_runs() {
    let pool = pool(WorkerKind::Threads).interruptible(true).build().unwrap();
    let blocker = pool.submit::<_, u64>("spin", u64::MAX).unwrap();
    let queued = pool.submit::<_, u64>("counter_next", ()).unwrap();
    queued.cancel();
    blocker.cancel();
    assert_eq!(queued.wait().unwrap_err().failure, TaskFailure::Cancelled);
    assert_eq!(blocker.wait().unwrap_err().failure, TaskFailure::Cancelled);
}

#[test]
fn cancelling_in_a_plain_thread_pool_discards_the_result_at_once() {
    // Without epoch checks the task runs to its end, but the caller does
    // not wait for it.
    let pool = pool(WorkerKind::Threads).build().unwrap();
    let handle = pool.submit::<_, u64>("spin", 300_000_000u64).unwrap();
    handle.cancel();
    assert_eq!(handle.wait().unwrap_err().failure, TaskFailure::Cancelled);
    assert_eq!(pool.call::<_, f64>("sqrt", 4.0).unwrap(), 2.0);
}

#[test]
fn fuel_stops_a_task_at_the_same_point_in_every_kind_of_worker() {
    let budget = 1_000_000;
    let spins: Vec<u64> = (1..=20).map(|i| i * 10_000).collect();
    let outcomes = |kind| -> Vec<bool> {
        let pool = pool(kind).workers(2).fuel(budget).build().unwrap();
        let results: Vec<Result<u64, _>> = pool.map_each("spin", spins.iter().copied()).unwrap();
        results
            .iter()
            .map(|r| match r {
                Ok(_) => true,
                Err(e) if e.failure == TaskFailure::Limit(LimitExceeded::Fuel { limit: budget }) => false,
                Err(e) => panic!("{e}"),
            })
            .collect()
    };
    let threads = outcomes(WorkerKind::Threads);
    assert!(threads.first() == Some(&true) && threads.last() == Some(&false), "{threads:?}");
    assert_eq!(threads, outcomes(WorkerKind::Processes));
    // A per-call budget overrides the pool's.
    let pool = pool(WorkerKind::Threads).fuel(budget).build().unwrap();
    assert!(pool.task("spin").unwrap().fuel(u64::MAX).call::<_, u64>(spins[19]).is_ok());
}

each_kind! {
    fn deep_recursion_is_a_stack_limit_and_the_cap_is_configurable(kind) {
        let small = pool(kind).build().unwrap();
        assert_eq!(small.call::<_, u64>("recurse", 100u64).unwrap(), 100);
        assert!(matches!(limit(small.call::<_, u64>("recurse", 50_000u64)), LimitExceeded::Stack { limit: 524_288 }));
        let large = pool(kind).max_stack(16 << 20).build().unwrap();
        assert_eq!(large.call::<_, u64>("recurse", 50_000u64).unwrap(), 50_000, "{kind:?}");
    }
}

each_kind! {
    fn overflowing_the_stack_a_rust_guest_keeps_in_linear_memory_is_a_stack_limit_too(kind) {
        // `recurse_with_buffer` keeps a 1 KiB array per frame in linear memory,
        // so Rust's 1 MiB stack there runs out before the Wasm stack does.
        let pool = pool(kind).max_stack(16 << 20).build().unwrap();
        assert_eq!(pool.call::<_, u64>("recurse_with_buffer", 100u64).unwrap(), 100);
        assert_eq!(limit(pool.call::<_, u64>("recurse_with_buffer", 5_000u64)), LimitExceeded::LinearStack, "{kind:?}");
        assert_eq!(pool.call::<_, u64>("recurse_with_buffer", 100u64).unwrap(), 100);
    }
}

each_kind! {
    fn an_allocation_past_the_memory_cap_is_a_memory_limit(kind) {
        let pool = pool(kind).max_memory(16 << 20).build().unwrap();
        assert_eq!(pool.call::<_, u64>("allocate", 1u64 << 20).unwrap(), 256);
        assert!(matches!(
            limit(pool.call::<_, u64>("allocate", 64u64 << 20)),
            LimitExceeded::Memory { limit, .. } if limit == 16 << 20
        ));
        assert_eq!(pool.call::<_, u64>("allocate", 1u64 << 20).unwrap(), 256);
    }
}

each_kind! {
    fn a_result_past_the_output_cap_is_refused(kind) {
        let pool = pool(kind).max_output(1 << 20).build().unwrap();
        assert_eq!(pool.call::<_, Vec<u8>>("big_result", 1000u32).unwrap().len(), 1000);
        assert!(matches!(
            limit(pool.call::<_, Vec<u8>>("big_result", 2u32 << 20)),
            LimitExceeded::Output { what, limit, .. } if what == "result" && limit == 1 << 20
        ));
    }
}

each_kind! {
    fn a_panic_inside_the_panic_hook_fails_that_task_only(kind) {
        let pool = pool(kind).build().unwrap();
        let failure = common::failure(pool.call::<_, ()>("panic_in_panic_hook", ()));
        assert!(matches!(failure, TaskFailure::Panic { .. } | TaskFailure::Trap { .. }), "{failure}");
        assert_eq!(pool.call::<_, f64>("sqrt", 4.0).unwrap(), 2.0);
    }
}

#[test]
fn a_worker_instance_stopped_at_its_deadline_is_replaced() {
    let pool = pool(WorkerKind::Threads)
        .instance_mode(InstanceMode::PerWorker)
        .init_task("counter_set", 5u64)
        .deadline(common::scaled(Duration::from_millis(100)))
        .build()
        .unwrap();
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 6);
    assert!(matches!(limit(pool.call::<_, u64>("spin", u64::MAX)), LimitExceeded::Deadline { .. }));
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 6, "a fresh, re-initialized instance");
}

#[test]
fn a_refusal_the_guest_survived_is_not_blamed_on_a_later_task() {
    let pool = pool(WorkerKind::Threads).instance_mode(InstanceMode::PerWorker).max_memory(16 << 20).build().unwrap();
    assert!(!pool.call::<_, bool>("try_allocate", 64u64 << 20).unwrap(), "the growth is refused, and survived");
    assert!(pool.call::<_, bool>("try_allocate", 1u64 << 20).unwrap());
    // The same kept instance now traps for an unrelated reason.
    assert!(matches!(common::failure(pool.call::<_, ()>("trap", 3u32)), TaskFailure::Trap { .. }));
}

#[test]
fn dropping_an_interruptible_pool_stops_its_running_tasks() {
    for builder in [pool(WorkerKind::Threads).interruptible(true), pool(WorkerKind::Processes)] {
        let pool = builder.build().unwrap();
        let handle = pool.submit::<_, u64>("spin", u64::MAX).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Dropped on a thread of its own, so a drop that never returns
        // fails the test instead of hanging it.
        let (dropped, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(pool);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(10)).expect("dropping the pool should stop its running task");
        assert_eq!(handle.wait().unwrap_err().failure, TaskFailure::PoolClosed);
    }
}
