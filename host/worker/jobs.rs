//! What travels from the scheduler to the workers and back.

use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::{Listeners, RawEvent};
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The task a job runs: its name (for errors), its export, the seed key of
/// its call (see [`crate::seed`]) and who listens to its messages.
#[derive(Debug)]
pub(crate) struct TaskTarget {
    pub name: String,
    pub export: String,
    pub seed_key: u64,
    pub listeners: Listeners,
}

impl TaskTarget {
    /// The same task with another seed key and other listeners.
    pub(crate) fn with(&self, seed_key: u64, listeners: Listeners) -> Arc<TaskTarget> {
        Arc::new(TaskTarget { name: self.name.clone(), export: self.export.clone(), seed_key, listeners })
    }

    /// The seed of this call's input at `index`.
    pub(crate) fn seed(&self, index: usize) -> u64 {
        crate::seed::seed_at(self.seed_key, index as u64)
    }
}

/// One input of a job: its index in the caller's map and its encoded
/// arguments (or the reason they could not be encoded).
pub(crate) struct Item {
    pub index: usize,
    pub args: Result<Vec<u8>, TaskFailure>,
}

/// A chunk of inputs of one task, run in order by one worker.
pub(crate) struct Job {
    pub task: Arc<TaskTarget>,
    pub items: Vec<Item>,
    pub reply: ReplyTo,
    /// Set when the caller has stopped waiting: the worker skips the job,
    /// and stops its running task where it can.
    pub cancelled: Option<Arc<AtomicBool>>,
    /// The limits of this call, the pool's unless the call overrode them.
    pub limits: CallLimits,
}

/// The per-call sandbox limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallLimits {
    pub deadline: Option<Duration>,
    pub fuel: Option<u64>,
}

impl Job {
    /// Whether the caller has given up on this job.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Where a job's results go.
pub(crate) enum ReplyTo {
    /// To a map's results channel, tagged with the chunk's sequence number.
    Chunk { seq: usize, to: Sender<ChunkResult> },
    /// To the handle returned by `submit`.
    Handle(Arc<dyn Completion>),
    /// To an exchange's queue, one `Finished` event per item.
    Events(Sender<RawEvent>),
}

/// Where the one result of a `submit` is left: the slot behind its
/// `TaskHandle`, which lives in the layer above.
pub(crate) trait Completion: Send + Sync {
    /// Stores `outcome` if it is the first one given, and wakes whoever
    /// waits for it.
    fn complete(&self, outcome: Outcome);
}

/// The results of one job, in the order of its items.
pub(crate) struct ChunkResult {
    pub seq: usize,
    pub results: Vec<(usize, Outcome)>,
}

impl ReplyTo {
    /// Delivers the results; a caller that stopped listening is not an error.
    pub(crate) fn send(self, mut results: Vec<(usize, Outcome)>) {
        match self {
            ReplyTo::Chunk { seq, to } => {
                let _ = to.send(ChunkResult { seq, results });
            }
            ReplyTo::Handle(slot) => {
                let outcome = results.pop().map_or_else(|| Outcome::bare(Err(TaskFailure::PoolClosed)), |(_, o)| o);
                slot.complete(outcome);
            }
            ReplyTo::Events(to) => {
                for (index, outcome) in results {
                    let _ = to.send(RawEvent::Finished { index, outcome });
                }
            }
        }
    }

    /// The job was cancelled after `done` ran and before `skipped` did. A
    /// map or handle whose caller cancelled no longer waits; an exchange
    /// still counts its tasks, so each gets its `Finished` event.
    pub(crate) fn abandon(self, done: Vec<(usize, Outcome)>, skipped: impl Iterator<Item = usize>) {
        if matches!(self, ReplyTo::Events(_)) {
            let cancelled = skipped.map(|index| (index, Outcome::bare(Err(TaskFailure::Cancelled))));
            self.send(done.into_iter().chain(cancelled).collect());
        }
    }
}
