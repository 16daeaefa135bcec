//! A worker thread: takes jobs from the pool's queue (and its own queue, for
//! broadcasts), runs each input through its [`ItemRunner`] (its task code,
//! a [`WorkerCode`](code::WorkerCode), in thread mode; a worker process in
//! process mode), and replies.
//!
//! `code` is the one enum over the two code kinds; `load` makes it from
//! compiled code of either kind, for thread workers and worker processes
//! alike; `executor` runs a core module's task in the instance its
//! [`InstanceMode`](executor::InstanceMode) calls for, `component` a task
//! component's; `probe` checks a module's ABI in a first instance at load.

pub(crate) mod code;
pub(crate) mod component;
pub(crate) mod executor;
pub(crate) mod jobs;
pub(crate) mod load;
pub(crate) mod probe;
pub(crate) mod stats;

use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::{ChannelOutbox, Listeners, Outbox};
use crate::sandbox::interrupt::RunLimits;
use crate::spin::spin_for;
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

    /// Called once a job's results have been sent: work that can wait
    /// until then (putting back an instance reset in place between
    /// inputs), so that the caller does not wait for it.
    fn tidy(&mut self) {}
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
        self.runner.tidy();
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

#[cfg(test)]
mod tests {
    //! The worker loop with a fake runner: which inputs run, in what order,
    //! with which context, and what each kind of reply receives.

    use super::*;
    use crate::runtime::outbox::{Listeners, RawEvent};
    use crate::worker::jobs::{CallLimits, ChunkResult, ReplyTo};
    use crossbeam_channel::{Sender, unbounded};

    /// What the fake runner saw of one run.
    #[derive(Debug, PartialEq)]
    struct Ran {
        export: String,
        args: Vec<u8>,
        index: usize,
        seed: u64,
        /// The indexes it was offered to send ahead.
        ahead: Vec<usize>,
    }

    /// Answers each input with its arguments reversed, and records it.
    #[derive(Default)]
    struct Fake {
        ran: Vec<Ran>,
        forgotten: usize,
        /// Sets this flag while running the input at this index.
        raise_at: Option<(usize, Arc<AtomicBool>)>,
    }

    impl ItemRunner for Fake {
        fn run(
            &mut self,
            export: &str,
            args: &[u8],
            context: &TaskContext<'_>,
            _limits: &RunLimits,
            ahead: Ahead<'_>,
        ) -> Outcome {
            self.ran.push(Ran {
                export: export.to_owned(),
                args: args.to_vec(),
                index: context.index,
                seed: context.seed,
                ahead: ahead.iter().map(|upcoming| upcoming.context.index).collect(),
            });
            if let Some((index, flag)) = &self.raise_at
                && *index == context.index
            {
                flag.store(true, Ordering::SeqCst);
            }
            Outcome::bare(Ok(args.iter().rev().copied().collect()))
        }

        fn forget_ahead(&mut self) {
            self.forgotten += 1;
        }
    }

    fn target() -> Arc<TaskTarget> {
        Arc::new(TaskTarget {
            name: "t".into(),
            export: "__wasmpool_task_t".into(),
            seed_key: 7,
            listeners: Listeners::default(),
        })
    }

    fn worker(runner: Fake) -> Worker<Fake> {
        Worker {
            id: 0,
            runner,
            closing: Arc::new(AtomicBool::new(false)),
            spin: Duration::ZERO,
            spinning: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(WorkerCounters::default()),
        }
    }

    fn item(index: usize, args: &[u8]) -> Item {
        Item { index, args: Ok(args.to_vec()) }
    }

    fn job(items: Vec<Item>, reply: ReplyTo, cancelled: Option<Arc<AtomicBool>>) -> Job {
        Job { task: target(), items, reply, cancelled, limits: CallLimits::default() }
    }

    fn chunk(seq: usize) -> (ReplyTo, crossbeam_channel::Receiver<ChunkResult>) {
        let (to, results) = unbounded();
        (ReplyTo::Chunk { seq, to }, results)
    }

    fn results(chunk: ChunkResult) -> Vec<(usize, Result<Vec<u8>, TaskFailure>)> {
        chunk.results.into_iter().map(|(index, outcome)| (index, outcome.result)).collect()
    }

    fn finished(events: &crossbeam_channel::Receiver<RawEvent>) -> Vec<(usize, Result<Vec<u8>, TaskFailure>)> {
        events
            .try_iter()
            .map(|event| match event {
                RawEvent::Finished { index, outcome } => (index, outcome.result),
                _ => panic!("only Finished events are sent by a worker"),
            })
            .collect()
    }

    #[test]
    fn a_job_runs_its_inputs_in_order_with_their_own_seeds_and_replies_once() {
        let mut worker = worker(Fake::default());
        let (reply, replies) = chunk(5);
        worker.serve(job(vec![item(3, b"ab"), item(4, b"cd"), item(5, b"ef")], reply, None));

        let chunk = replies.try_recv().expect("one reply");
        assert!(replies.try_recv().is_err(), "a job is answered once");
        assert_eq!(chunk.seq, 5);
        assert_eq!(results(chunk), [(3, Ok(b"ba".to_vec())), (4, Ok(b"dc".to_vec())), (5, Ok(b"fe".to_vec()))]);
        let task = target();
        let expected = |index: usize, args: &[u8], ahead: Vec<usize>| Ran {
            export: "__wasmpool_task_t".into(),
            args: args.to_vec(),
            index,
            seed: task.seed(index),
            ahead,
        };
        assert_eq!(
            worker.runner.ran,
            [expected(3, b"ab", vec![4, 5]), expected(4, b"cd", vec![5]), expected(5, b"ef", vec![])]
        );
        assert_eq!(worker.counters.snapshot().tasks, 3);
        assert_eq!(worker.runner.forgotten, 0);
    }

    #[test]
    fn an_input_whose_arguments_failed_to_encode_fails_alone_and_is_never_sent_ahead() {
        let mut worker = worker(Fake::default());
        let (reply, replies) = chunk(0);
        let bad = Item { index: 1, args: Err(TaskFailure::EncodeArguments("no".into())) };
        worker.serve(job(vec![item(0, b"a"), bad, item(2, b"c")], reply, None));

        let results = results(replies.try_recv().expect("one reply"));
        assert_eq!(results[0], (0, Ok(b"a".to_vec())));
        assert!(matches!(&results[1], (1, Err(TaskFailure::EncodeArguments(why))) if why == "no"), "{results:?}");
        assert_eq!(results[2], (2, Ok(b"c".to_vec())));
        let ran: Vec<_> = worker.runner.ran.iter().map(|ran| (ran.index, ran.ahead.clone())).collect();
        assert_eq!(ran, [(0, vec![]), (2, vec![])], "the input after a failed one is not offered ahead of it");
        assert_eq!(worker.counters.snapshot().tasks, 2, "a failed encoding is not a run");
    }

    #[test]
    fn a_job_cancelled_while_it_runs_stops_before_its_next_input() {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut worker = worker(Fake { raise_at: Some((1, cancel.clone())), ..Fake::default() });
        let (to, events) = unbounded();
        let items = (0..4).map(|i| item(i, &[i as u8])).collect();
        worker.serve(job(items, ReplyTo::Events(to), Some(cancel)));

        assert_eq!(worker.runner.ran.iter().map(|ran| ran.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(worker.runner.forgotten, 1, "the inputs sent ahead are forgotten");
        // An exchange counts its tasks: the skipped ones finish as cancelled.
        let finished = finished(&events);
        assert_eq!(finished[..2], [(0, Ok(vec![0])), (1, Ok(vec![1]))]);
        assert!(matches!(finished[2..], [(2, Err(TaskFailure::Cancelled)), (3, Err(TaskFailure::Cancelled))]));
    }

    #[test]
    fn a_map_that_cancelled_gets_no_reply() {
        let cancel = Arc::new(AtomicBool::new(true));
        let mut worker = worker(Fake::default());
        let (reply, replies) = chunk(0);
        worker.serve(job(vec![item(0, b"a")], reply, Some(cancel)));
        assert!(worker.runner.ran.is_empty());
        assert!(replies.try_recv().is_err(), "nobody waits for a cancelled map's chunk");
    }

    #[test]
    fn a_closing_pool_answers_pool_closed_without_running_anything() {
        let mut worker = worker(Fake::default());
        worker.closing.store(true, Ordering::SeqCst);
        let (reply, replies) = chunk(0);
        worker.serve(job(vec![item(0, b"a"), item(1, b"b")], reply, None));
        assert!(worker.runner.ran.is_empty());
        let results = results(replies.try_recv().expect("one reply"));
        assert!(matches!(results[..], [(0, Err(TaskFailure::PoolClosed)), (1, Err(TaskFailure::PoolClosed))]));
    }

    #[test]
    fn a_worker_answers_every_queued_job_and_stops_when_its_queues_close() {
        let (shared_tx, shared) = unbounded::<Job>();
        let (own_tx, own) = unbounded::<Job>();
        let (to, replies) = unbounded();
        let send = |queue: &Sender<Job>, seq: usize| {
            let reply = ReplyTo::Chunk { seq, to: to.clone() };
            queue.send(job(vec![item(seq, &[seq as u8])], reply, None)).unwrap();
        };
        for seq in 0..3 {
            send(&shared_tx, seq);
        }
        send(&own_tx, 3);
        drop((shared_tx, own_tx));
        let runner = std::thread::spawn(move || worker(Fake::default()).run(shared, own));
        runner.join().expect("the worker stops once its queues close");
        let mut answered: Vec<_> = replies.try_iter().map(|chunk| (chunk.seq, results(chunk))).collect();
        answered.sort_by_key(|(seq, _)| *seq);
        let expected: Vec<_> = (0..4).map(|seq| (seq, vec![(seq, Ok(vec![seq as u8]))])).collect();
        assert_eq!(answered, expected);
    }
}
