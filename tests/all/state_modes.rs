//! The two instance modes: a fresh instance per task (the default) and one
//! instance per worker with an init task.

use crate::common;

use wasmpool::{InstanceMode, Pool, TaskFailure};

fn pool(mode: InstanceMode, workers: usize) -> wasmpool::PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(workers).instance_mode(mode)
}

#[test]
fn fresh_instances_share_no_state() {
    let pool = pool(InstanceMode::FreshPerTask, 2).build().unwrap();
    assert_eq!(pool.instance_mode(), InstanceMode::FreshPerTask);
    let counts: Vec<u64> = pool.map("counter_next", vec![(); 50]).unwrap();
    assert!(counts.iter().all(|&c| c == 1), "every task starts from the initial state: {counts:?}");
}

#[test]
fn fresh_instances_run_the_init_task_before_every_task() {
    let pool = pool(InstanceMode::FreshPerTask, 2).init_task("counter_set", 100u64).build().unwrap();
    let counts: Vec<u64> = pool.map("counter_next", vec![(); 20]).unwrap();
    assert!(counts.iter().all(|&c| c == 101), "{counts:?}");
}

#[test]
fn a_worker_instance_keeps_its_state_between_tasks() {
    let pool = pool(InstanceMode::PerWorker, 1).init_task("counter_set", 10u64).build().unwrap();
    let counts: Vec<u64> = pool.task("counter_next").unwrap().chunk_size(1).map(vec![(); 5]).unwrap();
    assert_eq!(counts, vec![11, 12, 13, 14, 15]);
}

#[test]
fn each_worker_has_its_own_instance() {
    let workers = 3;
    let pool = pool(InstanceMode::PerWorker, workers).build().unwrap();
    let counters = || -> Vec<u64> {
        pool.broadcast::<_, u64>("counter_next", ()).unwrap().into_iter().map(Result::unwrap).collect()
    };
    // A broadcast reaches every worker exactly once: each sees its own counter.
    assert_eq!(counters(), vec![1; workers]);
    assert_eq!(counters(), vec![2; workers]);
    // Across all workers, a map's counts add up to the number of tasks.
    let counts: Vec<u64> = pool.task("counter_next").unwrap().chunk_size(1).map(vec![(); 30]).unwrap();
    let per_worker_max: u64 = counters().iter().map(|c| c - 3).sum();
    assert_eq!(per_worker_max, 30);
    assert!(counts.iter().all(|&c| c >= 3));
}

#[test]
fn a_trapped_worker_instance_is_replaced_and_reinitialized() {
    let pool = pool(InstanceMode::PerWorker, 1).init_task("counter_set", 5u64).build().unwrap();
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 6);
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 7);
    assert!(matches!(common::failure(pool.call::<_, i64>("divide", (1i64, 0i64))), TaskFailure::Panic { .. }));
    // The panicked instance is gone; the next task gets a new, initialized one.
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 6);
}

#[test]
fn an_err_result_keeps_the_worker_instance() {
    let pool = pool(InstanceMode::PerWorker, 1).build().unwrap();
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 1);
    assert!(pool.call::<_, u32>("fail_if_odd", 3u32).is_err());
    assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 2);
}

each_kind! {
    /// Between tasks a worker resets its instance in place (restoring the
    /// pages the task's writes marked) or creates a new one: either way each
    /// task sees the module's initial state, whatever the task before it did
    /// (changed statics, grew the memory, panicked).
    fn a_fresh_state_is_the_same_whether_instances_are_reset_or_created(kind) {
        for reset in [true, false] {
            let pool = pool(InstanceMode::FreshPerTask, 1).worker_kind(kind).reset_in_place(reset).build().unwrap();
            let initial_pages: u64 = pool.call("memory_pages", ()).unwrap();
            for round in 0..3 {
                let what = format!("{kind:?}, reset {reset}, round {round}");
                assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 1, "{what}");
                assert_eq!(pool.call::<_, u64>("allocate", 4u64 << 20).unwrap(), 1024, "{what}");
                assert_eq!(pool.call::<_, u64>("memory_pages", ()).unwrap(), initial_pages, "{what}");
                assert!(pool.call::<_, i64>("divide", (1i64, 0i64)).is_err(), "{what}");
                assert_eq!(pool.call::<_, u64>("counter_next", ()).unwrap(), 1, "{what}");
            }
            let counts: Vec<u64> = pool.task("counter_next").unwrap().chunk_size(1).map(vec![(); 100]).unwrap();
            assert!(counts.iter().all(|&c| c == 1), "{kind:?}, reset {reset}: {counts:?}");
        }
    }
}

#[test]
fn an_init_task_given_as_json_runs_through_the_json_entry_point() {
    // As the Python package gives it: an array of the arguments.
    let fresh = pool(InstanceMode::FreshPerTask, 2).init_task_json("counter_set", "[100]").build().unwrap();
    let counts: Vec<u64> = fresh.map("counter_next", vec![(); 10]).unwrap();
    assert!(counts.iter().all(|&c| c == 101), "{counts:?}");
    let kept = pool(InstanceMode::PerWorker, 1).init_task_json("counter_set", "[10]").build().unwrap();
    let counts: Vec<u64> = kept.task("counter_next").unwrap().chunk_size(1).map(vec![(); 3]).unwrap();
    assert_eq!(counts, vec![11, 12, 13]);
    // The arguments must be an array of as many as the task takes.
    for (args, expected) in [("100", "must be a JSON array"), ("[1, 2]", "takes 1 argument(s), but the array has 2")] {
        let error = pool_error(InstanceMode::FreshPerTask, "counter_set", args);
        assert!(error.contains(expected) && error.contains("counter_set"), "{args}: {error}");
    }
    let error = pool_error(InstanceMode::FreshPerTask, "nope", "[]");
    assert!(error.contains("nope"), "{error}");
}

fn pool_error(mode: InstanceMode, task: &str, args: &str) -> String {
    pool(mode, 1).init_task_json(task, args).build().expect_err("the init should be refused").to_string()
}
