//! A task with module-level state, to show the pool's state modes.
//!
//! With fresh instances (the default) every call starts from the initial
//! value; with one instance per worker the state carries over between tasks
//! that the same worker runs.

use std::sync::atomic::{AtomicU64, Ordering};
use wasmpool_guest::task;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Sets the counter; used as a worker's init task.
#[task]
pub fn counter_set(start: u64) {
    COUNTER.store(start, Ordering::Relaxed);
}

/// Increments the counter and returns its new value.
#[task]
pub fn counter_next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}
