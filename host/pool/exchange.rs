//! [`Exchange`]: wait on many running tasks at once and handle whichever
//! has a message, progress or a result ready, in arrival order.

use crate::decode::{as_message_failure, decode_item, decode_message};
use crate::error::{Result, TaskError, TaskFailure};
use crate::pool::json::{JsonTask, decode_json_result};
use crate::pool::{Pool, TaskRef};
use crate::runtime::outbox::{Listeners, RawEvent, Sent};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many events an exchange holds before the tasks sending them wait.
pub const DEFAULT_EXCHANGE_CAPACITY: usize = 64;

/// What happened in one of an [`Exchange`]'s tasks. `task` is the number
/// [`Exchange::start`] returned for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<M, R> {
    /// The task sent a message through its `Sender` (or sent bytes that do
    /// not decode as `M`: [`TaskFailure::DecodeMessage`](crate::TaskFailure::DecodeMessage)).
    Message {
        /// The task's number.
        task: usize,
        /// The message.
        message: std::result::Result<M, TaskError>,
    },
    /// The task reported `progress(done, total)`.
    Progress {
        /// The task's number.
        task: usize,
        /// Work done so far, in the task's own units.
        done: u64,
        /// Work in all, in the same units.
        total: u64,
    },
    /// The task finished. Its messages all came before this event.
    Finished {
        /// The task's number.
        task: usize,
        /// Its result, or why it failed.
        result: std::result::Result<R, TaskError>,
    },
}

/// Many running tasks and the events they produce, like pprocess's
/// `Exchange`: start tasks, then take their messages, progress reports and
/// results as they arrive, from all of them at once.
///
/// ```no_run
/// # fn main() -> wasmpool::Result<()> {
/// use wasmpool::{Event, Pool};
/// let pool = Pool::builder().module_file("guest_tasks.wasm").build()?;
/// // `collatz` sends every value it passes (u64) and returns its step count (u32).
/// let mut exchange = pool.exchange::<u64, u32>();
/// for n in [27u64, 97, 871] {
///     exchange.start("collatz", n)?;
/// }
/// for event in &mut exchange {
///     match event {
///         Event::Message { task, message } => println!("task {task} passed {}", message?),
///         Event::Progress { task, done, total } => println!("task {task}: {done}/{total}"),
///         Event::Finished { task, result } => println!("task {task} took {} steps", result?),
///     }
/// }
/// # Ok(()) }
/// ```
///
/// The exchange holds at most its capacity of events that have not been
/// taken; a task that sends more waits for room (up to its deadline), so a
/// task flooding its channel is slowed and host memory stays bounded. Each
/// message is also capped in size
/// ([`PoolBuilder::max_message`](crate::PoolBuilder::max_message)).
/// Dropping the exchange cancels its unfinished tasks.
///
/// Task `n` of an exchange runs with the seed of index `n` (see
/// [`task_seed`](crate::task_seed)), so a run started in the same order repeats. Every
/// event names its task; to follow one task alone, give it an exchange of
/// its own.
pub struct Exchange<'pool, M, R> {
    pool: &'pool Pool,
    events: Sender<RawEvent>,
    incoming: Receiver<RawEvent>,
    /// The task name of each task started, by number, and whether it was
    /// called through JSON (its messages and result are JSON then).
    names: Vec<(Arc<str>, Encoding)>,
    running: usize,
    cancel: Arc<AtomicBool>,
    _types: PhantomData<fn() -> (M, R)>,
}

impl<'pool, M: DeserializeOwned, R: DeserializeOwned> Exchange<'pool, M, R> {
    pub(crate) fn new(pool: &'pool Pool, capacity: usize) -> Self {
        let (events, incoming) = crossbeam_channel::bounded(capacity.max(1));
        Exchange {
            pool,
            events,
            incoming,
            names: Vec::new(),
            running: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            _types: PhantomData,
        }
    }

    /// Starts `task` with `args` and returns its number in this exchange
    /// (0, 1, 2, … in start order).
    pub fn start<A: Serialize>(&mut self, task: &str, args: A) -> Result<usize> {
        let task = self.pool.task(task)?;
        self.start_task(&task, args)
    }

    /// Starts a task with per-call options (deadline, fuel, seed, …).
    pub fn start_task<A: Serialize>(&mut self, task: &TaskRef<'_>, args: A) -> Result<usize> {
        let number = self.names.len();
        task.start_listened::<A, R>(args, number, self.listeners(task), self.cancel.clone())?;
        self.names.push((task.info().name.as_str().into(), Encoding::Postcard));
        self.running += 1;
        Ok(number)
    }

    /// Starts `task` through its JSON entry point, with `args` as JSON
    /// text (as for [`JsonTask::call`]): the way to run tasks written in
    /// Python in an exchange. Its messages and result are JSON, decoded as
    /// `M` and `R` with serde_json (`serde_json::Value` takes any).
    ///
    /// ```no_run
    /// # fn main() -> wasmpool::Result<()> {
    /// use wasmpool::{Event, Pool};
    /// let pool = Pool::builder().module_file("tasks.py").build()?;
    /// let mut exchange = pool.exchange::<serde_json::Value, serde_json::Value>();
    /// exchange.start_json("walk", "[3, 10]")?;
    /// for event in &mut exchange {
    ///     if let Event::Message { message, .. } = event {
    ///         println!("{}", message?);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn start_json(&mut self, task: &str, args: impl AsRef<[u8]>) -> Result<usize> {
        let task = self.pool.task(task)?.json()?;
        self.start_json_task(&task, args)
    }

    /// [`start_json`](Self::start_json) with per-call options.
    pub fn start_json_task(&mut self, task: &JsonTask<'_>, args: impl AsRef<[u8]>) -> Result<usize> {
        let number = self.names.len();
        let args = args.as_ref();
        let inner = task.task_ref();
        if let Err(failure) = task.check(args) {
            return Err(TaskError { task: task.info().name.clone(), index: number, failure }.into());
        }
        inner.start_encoded(args.to_vec(), number, self.listeners(inner), self.cancel.clone())?;
        self.names.push((task.info().name.as_str().into(), Encoding::Json));
        self.running += 1;
        Ok(number)
    }

    fn listeners(&self, task: &TaskRef<'_>) -> Listeners {
        Listeners { events: Some(self.events.clone()), progress: task.progress_callback() }
    }

    /// How many started tasks have not finished yet.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The next event, waiting at most `timeout` for it; `None` if none
    /// came in time, or if no task is running.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Event<M, R>> {
        if self.running == 0 {
            return None;
        }
        match self.incoming.recv_timeout(timeout) {
            Ok(raw) => Some(self.decode(raw)),
            Err(RecvTimeoutError::Timeout) => None,
            // Unreachable while `self.events` lives; kept total for safety.
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Stops the unfinished tasks: queued ones never start, and running
    /// ones stop where the pool can stop them (worker processes, and
    /// interruptible thread pools; a task waiting for room in this exchange
    /// stops in any pool). Each still ends with a `Finished` event: failed
    /// with `Cancelled`, or with its own result if it ran to the end.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    fn decode(&mut self, raw: RawEvent) -> Event<M, R> {
        match raw {
            RawEvent::Sent { index, sent: Sent::Message(bytes) } => Event::Message {
                task: index,
                message: match self.encoding(index) {
                    Encoding::Postcard => decode_message::<M>(&bytes),
                    Encoding::Json => decode_message_json::<M>(&bytes),
                }
                .map_err(|failure| self.error(index, failure)),
            },
            RawEvent::Sent { index, sent: Sent::Progress { done, total } } => {
                Event::Progress { task: index, done, total }
            }
            RawEvent::Finished { index, outcome } => {
                self.running = self.running.saturating_sub(1);
                if let Some((name, _)) = self.names.get(index) {
                    self.pool.output.deliver(name, index, &outcome.output);
                }
                let result = match self.encoding(index) {
                    Encoding::Postcard => decode_item::<R>(outcome.result),
                    Encoding::Json => outcome.result.and_then(|bytes| decode_result_json::<R>(&bytes)),
                };
                Event::Finished { task: index, result: result.map_err(|failure| self.error(index, failure)) }
            }
        }
    }

    fn error(&self, index: usize, failure: TaskFailure) -> TaskError {
        let task = self.names.get(index).map_or_else(String::new, |(name, _)| name.to_string());
        TaskError { task, index, failure }
    }

    fn encoding(&self, index: usize) -> Encoding {
        self.names.get(index).map_or(Encoding::Postcard, |(_, encoding)| *encoding)
    }
}

/// How a task of an exchange was called, and so how its messages and
/// result are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Postcard,
    Json,
}

/// A JSON message (checked as [`JsonEvents`](crate::JsonEvents) checks
/// it) decoded as `M`, as strictly as a result.
fn decode_message_json<M: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<M, TaskFailure> {
    decode_result_json::<M>(bytes).map_err(as_message_failure)
}

/// A JSON result (checked as [`JsonTask`]'s are) decoded as `R`.
fn decode_result_json<R: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<R, TaskFailure> {
    let text = decode_json_result(bytes)?;
    serde_json::from_str(&text)
        .map_err(|e| TaskFailure::DecodeResult { expected: std::any::type_name::<R>().into(), reason: e.to_string() })
}

impl<M: DeserializeOwned, R: DeserializeOwned> Iterator for Exchange<'_, M, R> {
    type Item = Event<M, R>;

    /// The next event, waiting as long as it takes; `None` once every task
    /// started so far has finished.
    fn next(&mut self) -> Option<Event<M, R>> {
        if self.running == 0 {
            return None;
        }
        match self.incoming.recv() {
            Ok(raw) => Some(self.decode(raw)),
            Err(_) => None,
        }
    }
}

impl<M, R> Drop for Exchange<'_, M, R> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}
