//! A worker thread: takes jobs from the pool's queue (and its own queue, for
//! broadcasts), runs each input through its [`ItemRunner`] (an [`Executor`]
//! in thread mode, a worker process in process mode), and replies.

use crate::channel::{ChannelOutbox, Listeners, Outbox};
use crate::error::TaskFailure;
use crate::executor::Executor;
use crate::guest_call::Outcome;
use crate::sandbox::interrupt::RunLimits;
use crate::scheduler::jobs::{Item, Job};
use crate::scheduler::spin::spin_for;
use crate::stats::WorkerCounters;
use crossbeam_channel::{Receiver, RecvError, TryRecvError, select};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs one task input, in its context and under its limits, and returns
/// its encoded result.
pub(crate) trait ItemRunner {
    /// Runs one input. `next` is the input of the same job that runs after
    /// it, if there is one: a runner may send it ahead (a worker process
    /// then starts it without waiting for the host). Whoever passes a `next`
    /// must either run exactly that input next or call
    /// [`forget_next`](Self::forget_next).
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        limits: &RunLimits,
        next: Option<Upcoming<'_>>,
    ) -> Outcome;

    /// The input last passed as `next` will not run (its job was cancelled
    /// or the pool is closing).
    fn forget_next(&mut self) {}
}

/// The input that runs after the current one.
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

impl TaskContext<'_> {
    /// The outbox for the task's messages, if anyone listens.
    pub fn outbox(&self) -> Option<Box<dyn Outbox>> {
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
        _next: Option<Upcoming<'_>>,
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
    pub fn run(mut self, shared: Receiver<Job>, own: Receiver<Job>) {
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
        let mut items = items.into_iter().peekable();
        // Whether the runner was told the current input comes next.
        let mut announced = false;
        while let Some(Item { index, args }) = items.next() {
            if cancelled.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                if announced {
                    self.runner.forget_next();
                }
                return reply.abandon(results, std::iter::once(index).chain(items.map(|item| item.index)));
            }
            let outcome = if self.closing.load(Ordering::Relaxed) {
                if std::mem::take(&mut announced) {
                    self.runner.forget_next();
                }
                Outcome::bare(Err(TaskFailure::PoolClosed))
            } else {
                match args {
                    Ok(args) => {
                        let context = TaskContext { index, seed: task.seed(index), listeners: &task.listeners };
                        // Only an input with arguments runs; one without
                        // (they failed to encode) is never announced.
                        let next = match items.peek() {
                            Some(Item { index, args: Ok(args) }) => Some(Upcoming {
                                args,
                                context: TaskContext {
                                    index: *index,
                                    seed: task.seed(*index),
                                    listeners: &task.listeners,
                                },
                            }),
                            _ => None,
                        };
                        announced = next.is_some();
                        let started = Instant::now();
                        let outcome = self.runner.run(&task.export, &args, &context, &run, next);
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
