//! A worker thread: takes jobs from the pool's queue (and its own queue, for
//! broadcasts), runs each input through its [`ItemRunner`] (an [`Executor`]
//! in thread mode, a worker process in process mode), and replies.

use crate::error::TaskFailure;
use crate::executor::Executor;
use crate::guest_call::Outcome;
use crate::sandbox::interrupt::RunLimits;
use crate::scheduler::jobs::{Item, Job};
use crossbeam_channel::{Receiver, select};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs one task input under its limits and returns its encoded result.
pub(crate) trait ItemRunner {
    fn run(&mut self, export: &str, args: &[u8], limits: &RunLimits) -> Outcome;
}

impl ItemRunner for Executor {
    fn run(&mut self, export: &str, args: &[u8], limits: &RunLimits) -> Outcome {
        Executor::run(self, export, args, limits)
    }
}

/// A worker thread's state.
pub(crate) struct Worker<R> {
    pub id: usize,
    pub runner: R,
    pub closing: Arc<AtomicBool>,
}

impl<R: ItemRunner> Worker<R> {
    /// Serves jobs until the pool closes its queues.
    pub fn run(mut self, shared: Receiver<Job>, own: Receiver<Job>) {
        loop {
            let job = select! {
                recv(own) -> job => job,
                recv(shared) -> job => job,
            };
            match job {
                Ok(job) => self.serve(job),
                Err(_) => break,
            }
        }
        // The pool is closing: answer whatever is still queued.
        for job in own.try_iter().chain(shared.try_iter()) {
            self.serve(job);
        }
        tracing::debug!(worker = self.id, "worker stopped");
    }

    fn serve(&mut self, job: Job) {
        if job.is_cancelled() {
            return;
        }
        let Job { task, items, reply, cancelled, limits } = job;
        // A dropped pool stops running tasks where it can (interruptible
        // thread pools; worker processes are killed by the pool itself).
        let run = RunLimits {
            deadline: limits.deadline,
            fuel: limits.fuel,
            cancel: cancelled.clone(),
            closing: Some(self.closing.clone()),
        };
        let mut results = Vec::with_capacity(items.len());
        for Item { index, args } in items {
            if cancelled.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return;
            }
            let outcome = if self.closing.load(Ordering::Relaxed) {
                Outcome::bare(Err(TaskFailure::PoolClosed))
            } else {
                match args {
                    Ok(args) => self.runner.run(&task.export, &args, &run),
                    Err(failure) => Outcome::bare(Err(failure)),
                }
            };
            results.push((index, outcome));
        }
        reply.send(results);
    }
}
