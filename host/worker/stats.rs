//! What each worker has done so far: tasks run, time busy, retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of a pool's work since it was built, from
/// [`Pool::stats`](crate::Pool::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// One entry per worker, in worker order.
    pub workers: Vec<WorkerStats>,
}

/// What one worker has done since the pool was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Task inputs it ran (successful or not).
    pub tasks: u64,
    /// Time spent running them (instantiating included, waiting excluded).
    pub busy: Duration,
    /// Process mode: tasks it ran again on a new process after its worker
    /// process died. Always 0 for thread workers.
    pub retries: u64,
}

impl PoolStats {
    /// Task inputs run by all workers.
    pub fn tasks(&self) -> u64 {
        self.workers.iter().map(|w| w.tasks).sum()
    }

    /// Retries by all workers.
    pub fn retries(&self) -> u64 {
        self.workers.iter().map(|w| w.retries).sum()
    }
}

/// A worker's live counters, shared with whoever asks for a snapshot.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    tasks: AtomicU64,
    busy_nanos: AtomicU64,
    retries: AtomicU64,
}

impl WorkerCounters {
    /// Counts one task run that took `busy`.
    pub(crate) fn ran(&self, busy: Duration) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one retry of a task on a new worker process.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            tasks: self.tasks.load(Ordering::Relaxed),
            busy: Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed)),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let counters = WorkerCounters::default();
        counters.ran(Duration::from_millis(3));
        counters.ran(Duration::from_millis(4));
        counters.retried();
        let stats = PoolStats { workers: vec![counters.snapshot(), WorkerStats::default()] };
        assert_eq!(stats.workers[0], WorkerStats { tasks: 2, busy: Duration::from_millis(7), retries: 1 });
        assert_eq!((stats.tasks(), stats.retries()), (2, 1));
    }
}
