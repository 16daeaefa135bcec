//! The two bugs of Hinsen's "Teaching parallel computing in Python", as
//! tests that wasmpool passes.
//!
//! 1. `pool.map(numpy.sqrt, range(100))` fails because a library function
//!    cannot be pickled. Here `sqrt` is an ordinary task of the module.
//! 2. A function defined after `Pool()` is unknown to the forked workers,
//!    and the fix does not work on Windows. Here the module is compiled
//!    whole before any worker starts and loaded the same way on every
//!    platform: every task exists in every worker.

use crate::common;

use common::demo_pool;
use wasmpool::TaskFailure;

#[test]
fn the_slide_works_sqrt_over_range_100() {
    let pool = demo_pool(2);
    let roots: Vec<f64> = pool.map("sqrt", (0..100).map(f64::from)).unwrap();
    assert_eq!(roots.len(), 100);
    assert_eq!(roots[49], 7.0);
    assert_eq!(roots[2], std::f64::consts::SQRT_2);
}

#[test]
fn every_task_exists_in_every_worker_wherever_it_is_defined() {
    let workers = 4;
    let pool = demo_pool(workers);
    // `defined_last` is the last item of the crate, in a module of its own.
    let last: Vec<u32> = pool.broadcast("defined_last", 1u32).unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(last, vec![2; workers]);
    // Every task the module lists answers on every worker. Called with no
    // arguments (a unit struct the host cannot type-check), a task either
    // runs (and may fail as it likes, as `panic_in_panic_hook` does), or
    // its own argument decoder in the guest complains: both prove the task
    // is there.
    #[derive(serde::Serialize)]
    struct NoArguments;
    for task in pool.tasks() {
        let outcomes = pool.broadcast::<_, serde::de::IgnoredAny>(&task.name, NoArguments).unwrap();
        for (worker, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(_) => unreachable!("postcard cannot decode IgnoredAny"),
                Err(e) => {
                    assert_eq!(e.index, worker);
                    assert!(
                        matches!(e.failure, TaskFailure::BadArguments(_))
                            || (task.params.is_empty() && !matches!(e.failure, TaskFailure::PoolClosed)),
                        "task `{}` should exist on worker {worker}: {e}",
                        task.name
                    );
                }
            }
        }
    }
}

#[test]
fn every_worker_computes_identical_results() {
    let pool = demo_pool(4);
    let pis: Vec<f64> =
        pool.broadcast("monte_carlo_pi", (100_000u64, 42u64)).unwrap().into_iter().map(Result::unwrap).collect();
    assert!(pis.windows(2).all(|w| w[0].to_bits() == w[1].to_bits()), "{pis:?}");
    let oscillators: Vec<(f64, f64)> =
        pool.broadcast("oscillator", (10_000u32, 0.001f64)).unwrap().into_iter().map(Result::unwrap).collect();
    assert!(
        oscillators.windows(2).all(|w| w[0].0.to_bits() == w[1].0.to_bits() && w[0].1.to_bits() == w[1].1.to_bits())
    );
    // ... and the same as native Rust, since Wasm floats are IEEE 754.
    assert_eq!(pis[0], guest_tasks::monte_carlo::monte_carlo_pi(100_000, 42));
    assert_eq!(oscillators[0], guest_tasks::math::oscillator(10_000, 0.001));
}
