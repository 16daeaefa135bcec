//! Waiting that spins briefly before it sleeps.
//!
//! Waking a sleeping thread costs a futex call and a context switch: about
//! 5 to 15 µs each on the virtual machines we measure on, so a call whose
//! task takes one microsecond would spend almost all its time handing the
//! job to a worker and the result back. A thread that expects work (a
//! worker that has just finished a job, a caller waiting for a result)
//! therefore checks for it a while before it goes to sleep. The budget is
//! the pool's [`idle_spin`](crate::PoolBuilder::idle_spin).

use std::time::{Duration, Instant};

/// Default spin budget before a waiting thread sleeps.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);

/// Busy checks before the first clock reading (a result due in about a
/// microsecond is caught without a system call).
const BUSY_CHECKS: u32 = 64;

/// Calls `poll` until it returns something or `budget` has passed: first a
/// few busy checks, then checks between `yield_now`s, so that a thread
/// sharing this core with the one we wait for lets it run. `None` means
/// the budget ran out; the caller then blocks.
pub(crate) fn spin_for<T>(budget: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    if budget.is_zero() {
        return None;
    }
    for _ in 0..BUSY_CHECKS {
        if let Some(found) = poll() {
            return Some(found);
        }
        std::hint::spin_loop();
    }
    let start = Instant::now();
    loop {
        if let Some(found) = poll() {
            return Some(found);
        }
        if start.elapsed() >= budget {
            return None;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_zero_budget_never_polls() {
        let mut polled = false;
        let found: Option<()> = spin_for(Duration::ZERO, || {
            polled = true;
            None
        });
        assert!(found.is_none());
        assert!(!polled);
    }

    #[test]
    fn gives_up_when_nothing_comes() {
        let start = Instant::now();
        let found: Option<()> = spin_for(Duration::from_millis(2), || None);
        assert!(found.is_none());
        assert!(start.elapsed() >= Duration::from_millis(2));
    }

    #[test]
    fn returns_what_another_thread_makes_ready() {
        let flag = Arc::new(AtomicBool::new(false));
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || flag.store(true, Ordering::Release))
        };
        setter.join().expect("setter");
        let found = spin_for(Duration::from_secs(5), || flag.load(Ordering::Acquire).then_some(7));
        assert_eq!(found, Some(7));
    }
}
