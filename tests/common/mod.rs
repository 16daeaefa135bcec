//! Helpers shared by the integration tests.
#![allow(dead_code)]

use wasmpool::{Error, Pool, TaskError, TaskFailure};

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
