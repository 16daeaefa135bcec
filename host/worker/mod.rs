//! A worker thread: takes jobs from the pool's queue (and its own queue, for
//! broadcasts), runs each input through its [`ItemRunner`] (an [`Executor`]
//! in thread mode, a worker process in process mode), and replies.
//!
//! `executor` runs one task in the instance its [`InstanceMode`](executor::InstanceMode)
//! calls for; `probe` checks a module's ABI in a first instance at load.

pub(crate) mod executor;
pub(crate) mod jobs;
pub(crate) mod probe;
pub(crate) mod stats;

use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::{ChannelOutbox, Listeners, Outbox};
use crate::sandbox::interrupt::RunLimits;
use crate::spin::spin_for;
use crate::worker::executor::Executor;
use crate::worker::jobs::{Item, Job, TaskTarget};
use crate::worker::stats::WorkerCounters;
use crossbeam_channel::{Receiver, RecvError, TryRecvError, select};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A worker thread's native stack: the Wasm stack cap plus room for the host.
pub(crate) fn worker_stack_size(max_wasm_stack: usize) -> usize {
    max_wasm_stack.saturating_add(2 << 20)
}

/// Runs one task input, in its context and under its limits, and returns
/// its encoded result.
pub(crate) trait ItemRunner {
    /// Runs one input. `ahead` are the inputs of the same job that run
    /// after it: a runner may send them ahead (a worker process then starts
    /// each without waiting for the host). Whoever passes inputs ahead must
    /// run them next, in order, or call [`forget_ahead`](Self::forget_ahead)
    /// before anything else.
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        limits: &RunLimits,
        ahead: Ahead<'_>,
    ) -> Outcome;

    /// The inputs passed ahead, if any are still owed, will not run (their
    /// job was cancelled or the pool is closing). A no-op when none are.
    fn forget_ahead(&mut self) {}
}

/// The inputs of a job after the one running, up to the first whose
/// arguments failed to encode (that one is never run).
pub(crate) struct Ahead<'a> {
    items: &'a [Item],
    task: &'a TaskTarget,
}

impl<'a> Ahead<'a> {
    /// `items` of `task`, which run after the current input.
    pub(crate) fn new(items: &'a [Item], task: &'a TaskTarget) -> Self {
        Ahead { items, task }
    }

    /// The inputs, in the order they run.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Upcoming<'a>> + use<'a> {
        let task = self.task;
        self.items.iter().map_while(move |item| {
            let args = item.args.as_deref().ok()?;
            Some(Upcoming { args, context: TaskContext::of(task, item.index) })
        })
    }
}

/// An input that runs after the current one.
pub(crate) struct Upcoming<'a> {
    pub args: &'a [u8],
    pub context: TaskContext<'a>,
}

/// What one task run knows besides its arguments.
pub(crate) struct TaskContext<'a> {
    /// The input's index in its call.
    pub index: usize,
    /// The task's seed.
    pub seed: u64,
    /// Who receives what the task sends while it runs.
    pub listeners: &'a Listeners,
}

impl<'a> TaskContext<'a> {
    /// The context of `task`'s input at `index`.
    pub(crate) fn of(task: &'a TaskTarget, index: usize) -> Self {
        TaskContext { index, seed: task.seed(index), listeners: &task.listeners }
    }

    /// The outbox for the task's messages, if anyone listens.
    pub(crate) fn outbox(&self) -> Option<Box<dyn Outbox>> {
        let listened = self.listeners.wants_messages() || self.listeners.wants_progress();
        listened.then(|| {
            Box::new(ChannelOutbox { index: self.index, listeners: self.listeners.clone() }) as Box<dyn Outbox>
        })
    }
}

impl ItemRunner for Executor {
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        limits: &RunLimits,
        _ahead: Ahead<'_>,
    ) -> Outcome {
        Executor::run(self, export, args, context.seed, context.outbox(), limits)
    }
}

/// A worker thread's state.
pub(crate) struct Worker<R> {
    pub id: usize,
    pub runner: R,
    pub closing: Arc<AtomicBool>,
    /// How long an idle worker checks for a job before it sleeps.
    pub spin: Duration,
    /// Set while one of the pool's idle workers spins for a lone job: one
    /// is enough to pick up the next call at once, and more would take the
    /// cores the caller and the busy workers need.
    pub spinning: Arc<AtomicBool>,
    /// What this worker has done, for [`Pool::stats`](crate::Pool::stats).
    pub counters: Arc<WorkerCounters>,
}

/// What a worker expects next, from the queue it last took a job from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Other jobs were waiting behind the last one (a map is feeding the
    /// pool): more are coming, so every idle worker spins for them.
    Burst,
    /// The queue was empty: at most one idle worker spins.
    Lone,
}

impl<R: ItemRunner> Worker<R> {
    /// Serves jobs until the pool closes its queues.
    pub(crate) fn run(mut self, shared: Receiver<Job>, own: Receiver<Job>) {
        let mut expect = Expect::Lone;
        loop {
            let job = self.spin_for_job(&own, &shared, expect).unwrap_or_else(|| {
                select! {
                    recv(own) -> job => job,
                    recv(shared) -> job => job,
                }
            });
            match job {
                Ok(job) => {
                    expect = if shared.is_empty() { Expect::Lone } else { Expect::Burst };
                    self.serve(job);
                }
                Err(_) => break,
            }
        }
        // The pool is closing: answer whatever is still queued.
        for job in own.try_iter().chain(shared.try_iter()) {
            self.serve(job);
        }
        tracing::debug!(worker = self.id, "worker stopped");
    }

    /// A job that arrives within the spin budget, if this worker may spin
    /// (see [`Expect`]); `None` if it should sleep until one comes.
    fn spin_for_job(
        &self,
        own: &Receiver<Job>,
        shared: &Receiver<Job>,
        expect: Expect,
    ) -> Option<Result<Job, RecvError>> {
        if self.spin.is_zero() {
            return None;
        }
        if expect == Expect::Burst {
            return spin_for(self.spin, || next_ready(own, shared));
        }
        if self.spinning.swap(true, Ordering::Acquire) {
            return None;
        }
        let found = spin_for(self.spin, || next_ready(own, shared));
        self.spinning.store(false, Ordering::Release);
        found
    }

    fn serve(&mut self, job: Job) {
        if job.is_cancelled() {
            return job.reply.abandon(Vec::new(), job.items.iter().map(|item| item.index));
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
        let mut items = items.into_iter();
        // Inputs of this job a runner sent ahead are all run by the job's
        // end, unless it stops early: then they are forgotten.
        while let Some(Item { index, args }) = items.next() {
            if cancelled.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                self.runner.forget_ahead();
                return reply.abandon(results, std::iter::once(index).chain(items.map(|item| item.index)));
            }
            let outcome = if self.closing.load(Ordering::Relaxed) {
                self.runner.forget_ahead();
                Outcome::bare(Err(TaskFailure::PoolClosed))
            } else {
                match args {
                    Ok(args) => {
                        let context = TaskContext::of(&task, index);
                        let ahead = Ahead::new(items.as_slice(), &task);
                        let started = Instant::now();
                        let outcome = self.runner.run(&task.export, &args, &context, &run, ahead);
                        self.counters.ran(started.elapsed());
                        outcome
                    }
                    Err(failure) => Outcome::bare(Err(failure)),
                }
            };
            results.push((index, outcome));
        }
        reply.send(results);
    }
}

/// A job already waiting in either queue (the worker's own first), or the
/// end of the pool; `None` if there is nothing yet.
fn next_ready(own: &Receiver<Job>, shared: &Receiver<Job>) -> Option<Result<Job, RecvError>> {
    match own.try_recv() {
        Ok(job) => return Some(Ok(job)),
        Err(TryRecvError::Disconnected) => return Some(Err(RecvError)),
        Err(TryRecvError::Empty) => {}
    }
    match shared.try_recv() {
        Ok(job) => Some(Ok(job)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
        Err(TryRecvError::Empty) => None,
    }
}
