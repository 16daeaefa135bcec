//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;
use wasmpool::{Error, Pool, TaskError, TaskFailure};

/// `duration` times `WASMPOOL_TEST_TIME_SCALE` (a whole number, default 1),
/// for the deadlines of timing tests. `.ci/aarch64` sets it: under qemu a
/// pool's probe, which a pool deadline also bounds, and the first run of
/// each task's code take several times longer.
pub fn scaled(duration: Duration) -> Duration {
    let scale = std::env::var("WASMPOOL_TEST_TIME_SCALE").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(1);
    duration * scale.max(1)
}

/// How many cases a property test tries: `full`, or a fifth of it (at least
/// 16) in the emulated cross builds, which set `WASMPOOL_CROSS_TEST`
/// (`.ci/windows`, `.ci/aarch64`). Those builds check that the same code
/// behaves the same elsewhere; the full search runs in the native build.
pub fn cases(full: u32) -> u32 {
    if std::env::var_os("WASMPOOL_CROSS_TEST").is_some() { (full / 5).max(16) } else { full }
}

/// A pool of the demo task module with `workers` threads.
pub fn demo_pool(workers: usize) -> Pool {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(workers).build().expect("the demo pool builds")
}

/// The task error inside `error`, failing the test if it is another error.
pub fn task_error(error: Error) -> TaskError {
    match error {
        Error::Task(e) => e,
        other => panic!("expected a task error, got: {other}"),
    }
}

/// The failure inside a call's error.
pub fn failure<T: std::fmt::Debug>(result: wasmpool::Result<T>) -> TaskFailure {
    task_error(result.expect_err("the call should fail")).failure
}

pub mod records;

/// The name libtest gives the test `name` of the module `module` (pass
/// `module_path!()`): `lifecycle::child_measure_one_engine`, for running it
/// alone in a child process with `--exact`.
pub fn this_binarys_test(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// One test per worker kind:
///
/// ```ignore
/// each_kind! {
///     /// Docs and attributes apply to both tests.
///     fn a_task_fails_cleanly(kind) { let pool = builder(kind).build().unwrap(); … }
/// }
/// ```
///
/// defines `a_task_fails_cleanly::threads` and
/// `a_task_fails_cleanly::processes`, each running the body with `kind`
/// bound to its [`WorkerKind`](wasmpool::WorkerKind), so a failure in one
/// kind neither hides nor stops the other.
macro_rules! each_kind {
    ($(#[$attr:meta])* fn $name:ident($kind:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$attr])*
            #[test]
            fn threads() {
                let $kind = wasmpool::WorkerKind::Threads;
                $body
            }

            $(#[$attr])*
            #[test]
            fn processes() {
                let $kind = wasmpool::WorkerKind::Processes;
                $body
            }
        }
    };
}
