//! One task of a pool, with per-call options: the calls themselves.

use super::Pool;
use crate::decode::encode_args;
use crate::error::{Error, Result, TaskError, TaskFailure};
use crate::pool::handle::{Captured, HandleSlot, TaskHandle, closed_slot};
use crate::pool::json::JsonTask;
use crate::runtime::module::TaskInfo;
use crate::runtime::outbox::{Listeners, ProgressFn, RawEvent};
use crate::runtime::typecheck;
use crate::scheduler::chunking::ChunkSize;
use crate::scheduler::stream::{Dispatch, Encoder, Imap, ImapUnordered};
use crate::worker::jobs::{CallLimits, Item, Job, ReplyTo, TaskTarget};
use crossbeam_channel::Sender;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Chunks a map keeps out at once per worker (queued, running or finished
/// but not yet consumed); bounds a streaming map's memory.
const CHUNKS_IN_FLIGHT_PER_WORKER: usize = 4;

/// A task of a [`Pool`], from [`Pool::task`]: the same calls as the pool's
/// own methods, plus options for this call only.
///
/// ```no_run
/// # fn main() -> wasmpool::Result<()> {
/// # let pool = wasmpool::Pool::builder().module_file("guest_tasks.wasm").build()?;
/// let roots: Vec<f64> = pool.task("sqrt")?.chunk_size(1).map((0..100).map(f64::from))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TaskRef<'pool> {
    pool: &'pool Pool,
    info: &'pool TaskInfo,
    target: Arc<TaskTarget>,
    chunk_size: ChunkSize,
    limits: CallLimits,
}

impl<'pool> TaskRef<'pool> {
    pub(super) fn new(pool: &'pool Pool, info: &'pool TaskInfo, chunk_size: ChunkSize) -> Self {
        let target = Arc::new(TaskTarget {
            name: info.name.clone(),
            export: wasmpool_abi::task_export_name(&info.name),
            seed_key: crate::seed::map_key(pool.seed, &info.name),
            listeners: Listeners::default(),
        });
        let limits = CallLimits { deadline: pool.sandbox.deadline, fuel: pool.sandbox.fuel };
        TaskRef { pool, info, target, chunk_size, limits }
    }

    /// Wall-time limit of each task of calls made through this reference,
    /// instead of the pool's. In thread workers it needs an interruptible
    /// pool (one built with a deadline, or with
    /// [`interruptible`](crate::PoolBuilder::interruptible)); calls report
    /// [`Error::Config`] otherwise. Worker processes enforce it always.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.limits.deadline = Some(deadline);
        self
    }

    /// Fuel budget of each task of calls made through this reference,
    /// instead of the pool's. Needs a pool built with
    /// [`fuel`](crate::PoolBuilder::fuel) (fuel metering is compiled into
    /// the module); calls report [`Error::Config`] otherwise.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.limits.fuel = Some(fuel);
        self
    }

    /// The seed of calls made through this reference, instead of the
    /// pool's: the task at index `i` of a map gets
    /// [`task_seed(seed, name, i)`](crate::seed::task_seed) (a single call
    /// or `submit` is index 0, a `broadcast` the worker's number).
    pub fn seed(mut self, seed: u64) -> Self {
        let seed_key = crate::seed::map_key(seed, &self.target.name);
        self.target = self.target.with(seed_key, self.target.listeners.clone());
        self
    }

    /// Calls `callback(index, done, total)` whenever a task of calls made
    /// through this reference reports `wasmpool_guest::progress(done,
    /// total)`: `index` is the input's index in its map. It runs on the
    /// thread tending the worker, while the task waits: keep it short.
    ///
    /// ```no_run
    /// # fn main() -> wasmpool::Result<()> {
    /// # let pool = wasmpool::Pool::builder().module_file("guest_tasks.wasm").build()?;
    /// let task = pool.task("slow_sum")?.on_progress(|index, done, total| eprintln!("#{index}: {done}/{total}"));
    /// let sums: Vec<u64> = task.map([1_000_000u64, 2_000_000])?;
    /// # Ok(()) }
    /// ```
    pub fn on_progress(mut self, callback: impl Fn(usize, u64, u64) + Send + Sync + 'static) -> Self {
        let listeners = Listeners { events: None, progress: Some(Arc::new(callback)) };
        self.target = self.target.with(self.target.seed_key, listeners);
        self
    }

    /// The progress callback set with [`on_progress`](Self::on_progress).
    pub(crate) fn progress_callback(&self) -> Option<ProgressFn> {
        self.target.listeners.progress.clone()
    }

    /// Starts one task as number `index` of an exchange, whose queue
    /// `listeners` carries its messages and its result.
    pub(crate) fn start_listened<A: Serialize, R: DeserializeOwned>(
        &self,
        args: A,
        index: usize,
        listeners: Listeners,
        cancel: Arc<AtomicBool>,
    ) -> Result<()> {
        self.check_types::<A, R>()?;
        let args = encode_args(&args).map_err(|f| self.error(index, f))?;
        self.start_encoded(args, index, listeners, cancel)
    }

    /// Starts one task on arguments already encoded for its export, as
    /// number `index` of an exchange (see [`start_listened`](Self::start_listened)).
    pub(crate) fn start_encoded(
        &self,
        args: Vec<u8>,
        index: usize,
        listeners: Listeners,
        cancel: Arc<AtomicBool>,
    ) -> Result<()> {
        self.check_limits()?;
        let Some(events) = listeners.events.clone() else {
            return Err(self.error(index, TaskFailure::PoolClosed));
        };
        let job = Job {
            task: self.target.with(self.target.seed_key, listeners),
            items: vec![Item { index, args: Ok(args) }],
            reply: ReplyTo::Events(events),
            cancelled: Some(cancel),
            limits: self.limits,
        };
        match self.pool.queue() {
            Some(queue) if queue.send(job).is_ok() => Ok(()),
            _ => Err(self.error(index, TaskFailure::PoolClosed)),
        }
    }

    /// The same task, its messages and progress sent to `events` as well
    /// as to its progress callback (a JSON map's listeners: its results
    /// go their own way).
    pub(crate) fn with_events(mut self, events: Sender<RawEvent>) -> Self {
        let listeners = Listeners { events: Some(events), progress: self.target.listeners.progress.clone() };
        self.target = self.target.with(self.target.seed_key, listeners);
        self
    }

    /// The same task called through its JSON entry point: arguments and
    /// results as JSON text (see [`JsonTask`](crate::JsonTask)). Per-call options (seed,
    /// deadline, fuel, chunk size, progress) set before carry over. Fails
    /// with [`Error::NoJsonEntry`] if the module has none for this task.
    pub fn json(self) -> Result<JsonTask<'pool>> {
        if !self.info.json {
            return Err(Error::NoJsonEntry { task: self.info.name.clone() });
        }
        let target = Arc::new(TaskTarget {
            name: self.target.name.clone(),
            export: wasmpool_abi::json_export_name(&self.info.name),
            seed_key: self.target.seed_key,
            listeners: self.target.listeners.clone(),
        });
        Ok(JsonTask::new(TaskRef { target, ..self }))
    }

    /// The task's description from the module.
    pub fn info(&self) -> &TaskInfo {
        self.info
    }

    /// Chunking for maps made through this reference (`0`: automatic).
    pub fn chunk_size(mut self, chunk_size: impl Into<ChunkSize>) -> Self {
        self.chunk_size = chunk_size.into();
        self
    }

    /// Runs the task once and waits for its result.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Result<R> {
        Ok(self.submit::<A, R>(args)?.wait()?)
    }

    /// Runs the task once and returns its result with what it wrote to
    /// stdout and stderr (see [`WasiConfig`](crate::WasiConfig)).
    pub fn call_captured<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Result<Captured<R>> {
        Ok(self.submit::<A, R>(args)?.wait_captured())
    }

    /// Starts the task and returns a handle to its result.
    pub fn submit<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Result<TaskHandle<R>> {
        self.check_types::<A, R>()?;
        self.check_limits()?;
        let args = encode_args(&args).map_err(|f| self.error(0, f))?;
        let slot = Arc::new(HandleSlot::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            task: self.target.clone(),
            items: vec![Item { index: 0, args: Ok(args) }],
            reply: ReplyTo::Handle(slot.clone()),
            cancelled: Some(cancel.clone()),
            limits: self.limits,
        };
        let sent = self.pool.queue().is_some_and(|queue| queue.send(job).is_ok());
        let slot = if sent { slot } else { closed_slot() };
        Ok(TaskHandle::new(slot, self.target.name.as_str().into(), cancel, self.pool.spin, self.pool.output.clone()))
    }

    /// Runs the task on every input; results in input order. The first
    /// failure to arrive stops the map (queued inputs are skipped) and is
    /// returned.
    pub fn map<I, R>(&self, inputs: I) -> Result<Vec<R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        let mut stream = self.imap_unordered::<I, R>(inputs)?;
        let mut slots: Vec<Option<R>> = Vec::new();
        for (index, result) in stream.by_ref() {
            match result {
                Ok(value) => {
                    if slots.len() <= index {
                        slots.resize_with(index + 1, || None);
                    }
                    slots[index] = Some(value);
                }
                Err(error) => {
                    stream.cancel();
                    return Err(error.into());
                }
            }
        }
        // Every index below the largest one seen has been answered: the
        // dispatcher numbers inputs densely and returns each exactly once.
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| slot.ok_or_else(|| self.error(index, TaskFailure::PoolClosed)))
            .collect()
    }

    /// Runs the task on every input and returns every input's own result,
    /// in input order.
    pub fn map_each<I, R>(&self, inputs: I) -> Result<Vec<Result<R, TaskError>>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        Ok(self.imap::<I, R>(inputs)?.collect())
    }

    /// Like [`map_each`](TaskRef::map_each), with each input's output
    /// (what it wrote to stdout and stderr) next to its result.
    pub fn map_captured<I, R>(&self, inputs: I) -> Result<Vec<Captured<R>>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        let mut dispatch = self.dispatch::<I, R>(inputs)?;
        let mut slots: Vec<Option<Captured<R>>> = Vec::new();
        while let Some(chunk) = dispatch.next_chunk(0) {
            for (index, mut outcome) in chunk.results {
                let output = std::mem::take(&mut outcome.output);
                let result = dispatch.decode(index, outcome, crate::decode::decode_result::<R>);
                if slots.len() <= index {
                    slots.resize_with(index + 1, || None);
                }
                slots[index] = Some(Captured { result, output });
            }
        }
        Ok(slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                slot.unwrap_or_else(|| Captured {
                    result: Err(self.task_error(index, TaskFailure::PoolClosed)),
                    output: Default::default(),
                })
            })
            .collect())
    }

    /// A lazy map yielding results in input order, with bounded memory.
    pub fn imap<I, R>(&self, inputs: I) -> Result<Imap<'pool, I::IntoIter, R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        Ok(Imap::new(self.dispatch::<I, R>(inputs)?))
    }

    /// A lazy map yielding `(input index, result)` in completion order.
    pub fn imap_unordered<I, R>(&self, inputs: I) -> Result<ImapUnordered<'pool, I::IntoIter, R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        Ok(ImapUnordered::new(self.dispatch::<I, R>(inputs)?))
    }

    /// Runs the task once on every worker and returns each worker's own
    /// result, in worker order (a failure's index is the worker's number).
    pub fn broadcast<A: Serialize, R: DeserializeOwned>(&self, args: A) -> Result<Vec<Result<R, TaskError>>> {
        self.check_types::<A, R>()?;
        self.check_limits()?;
        let args = encode_args(&args).map_err(|f| self.error(0, f))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let queues = self.pool.worker_queues();
        let mut results: Vec<Result<R, TaskError>> =
            (0..queues.len()).map(|worker| Err(self.task_error(worker, TaskFailure::PoolClosed))).collect();
        for (worker, queue) in queues.iter().enumerate() {
            let job = Job {
                task: self.target.clone(),
                items: vec![Item { index: worker, args: Ok(args.clone()) }],
                reply: ReplyTo::Chunk { seq: worker, to: tx.clone() },
                cancelled: None,
                limits: self.limits,
            };
            // A worker that is gone keeps its `PoolClosed` result.
            let _ = queue.send(job);
        }
        drop(tx);
        for chunk in rx.iter() {
            for (worker, result) in chunk.results {
                let decoded = crate::decode::decode_item::<R>(result.result).map_err(|f| self.task_error(worker, f));
                if let Some(slot) = results.get_mut(worker) {
                    *slot = decoded;
                }
            }
        }
        Ok(results)
    }

    fn dispatch<I, R>(&self, inputs: I) -> Result<Dispatch<I::IntoIter>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        self.check_types::<I::Item, R>()?;
        self.dispatch_with(inputs.into_iter(), |input| encode_args(&input))
    }

    /// A map's dispatch of `inputs`, each encoded by `encode` (no type
    /// check: the caller's encoding is its own).
    pub(crate) fn dispatch_with<I: Iterator>(&self, inputs: I, encode: Encoder<I::Item>) -> Result<Dispatch<I>> {
        self.check_limits()?;
        let workers = self.pool.workers();
        let chunk = self.chunk_size.resolve(inputs.size_hint(), workers);
        let queue = self.pool.queue().cloned().ok_or_else(|| self.error(0, TaskFailure::PoolClosed))?;
        let window = workers * CHUNKS_IN_FLIGHT_PER_WORKER;
        Ok(Dispatch::new(queue, self.target.clone(), inputs, encode, chunk, window, self.limits, self.pool.spin)
            .with_output(self.pool.output.clone()))
    }

    /// Refuses limits the pool cannot enforce, rather than ignoring them.
    fn check_limits(&self) -> Result<()> {
        let sandbox = &self.pool.sandbox;
        if self.limits.deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::Config("a deadline of zero would stop every task before it starts".into()));
        }
        if self.limits.deadline.is_some() && !sandbox.stoppable {
            return Err(Error::Config(format!(
                "task `{}`: a per-call deadline needs a pool whose thread workers can be interrupted: build it \
                 with `.deadline(...)` or `.interruptible(true)`, or use worker processes",
                self.info.name
            )));
        }
        // Fuel is metered exactly when the pool has a budget of its own.
        if self.limits.fuel.is_some() && sandbox.fuel.is_none() {
            return Err(Error::Config(format!(
                "task `{}`: a per-call fuel budget needs a pool built with `.fuel(...)`, which compiles fuel \
                 metering into the module",
                self.info.name
            )));
        }
        Ok(())
    }

    fn check_types<A, R>(&self) -> Result<()> {
        typecheck::check_args(self.info, std::any::type_name::<A>())
            .map_err(|e| self.error(0, TaskFailure::ArgumentTypes(e)))?;
        typecheck::check_result(self.info, std::any::type_name::<R>()).map_err(|e| {
            self.error(0, TaskFailure::DecodeResult { expected: std::any::type_name::<R>().into(), reason: e })
        })?;
        Ok(())
    }

    fn task_error(&self, index: usize, failure: TaskFailure) -> TaskError {
        TaskError { task: self.info.name.clone(), index, failure }
    }

    fn error(&self, index: usize, failure: TaskFailure) -> Error {
        Error::Task(self.task_error(index, failure))
    }
}
