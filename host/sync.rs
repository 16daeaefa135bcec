//! Locking that survives a poisoned mutex.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, even if a thread panicked while holding it: every
/// critical section in wasmpool leaves its data consistent (single
/// assignments, or whole values swapped in), so poison carries no meaning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
