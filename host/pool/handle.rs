//! The handle `submit` returns: wait on it, poll it, or `.await` it.

use crate::decode::decode_item;
use crate::error::{TaskError, TaskFailure};
use crate::runtime::instance::Outcome;
use crate::sandbox::TaskOutput;
use crate::sandbox::output::OutputSink;
use crate::spin::spin_for;
use crate::worker::jobs::Completion;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Where a worker leaves one task's result for its handle.
#[derive(Default)]
pub(crate) struct HandleSlot {
    state: Mutex<SlotState>,
    ready: Condvar,
    /// Set once the result is in, for waiters that spin before sleeping.
    finished: AtomicBool,
}

#[derive(Default)]
struct SlotState {
    result: Option<Outcome>,
    /// Set by the first `complete`; later ones (a task finishing after it
    /// was cancelled) are ignored.
    done: bool,
    waker: Option<Waker>,
}

impl HandleSlot {
    /// Stores the first result it is given and wakes whoever waits.
    pub(crate) fn complete(&self, outcome: Outcome) {
        let waker = {
            let mut state = self.lock();
            if state.done {
                return;
            }
            state.done = true;
            state.result = Some(outcome);
            state.waker.take()
        };
        self.finished.store(true, Ordering::Release);
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        crate::sync::lock(&self.state)
    }
}

impl Completion for HandleSlot {
    fn complete(&self, outcome: Outcome) {
        HandleSlot::complete(self, outcome);
    }
}

/// A task started with `submit`, running or queued on the pool.
///
/// Wait for it with [`wait`](TaskHandle::wait) or
/// [`wait_timeout`](TaskHandle::wait_timeout), check it with
/// [`is_finished`](TaskHandle::is_finished), or `.await` it: it is a
/// [`Future`] that any executor can drive. Stop it with
/// [`cancel`](TaskHandle::cancel). Dropping the handle does not stop the
/// task; its result is discarded.
#[must_use = "a task's result is only seen through its handle"]
pub struct TaskHandle<R> {
    slot: Arc<HandleSlot>,
    task: Arc<str>,
    cancel: Arc<AtomicBool>,
    /// How long `wait` checks for the result before it sleeps.
    spin: Duration,
    /// Where the task's printed output goes, unless taken by `wait_captured`.
    output: OutputSink,
    _result: PhantomData<fn() -> R>,
}

/// A task's result together with what it wrote to stdout and stderr (WASI
/// tasks; empty otherwise). Failed tasks keep their output too.
#[derive(Debug)]
pub struct Captured<R> {
    /// The task's result.
    pub result: Result<R, TaskError>,
    /// What it wrote.
    pub output: TaskOutput,
}

impl<R> std::fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("task", &self.task).field("finished", &self.is_finished()).finish()
    }
}

impl<R> TaskHandle<R> {
    pub(crate) fn new(
        slot: Arc<HandleSlot>,
        task: Arc<str>,
        cancel: Arc<AtomicBool>,
        spin: Duration,
        output: OutputSink,
    ) -> Self {
        TaskHandle { slot, task, cancel, spin, output, _result: PhantomData }
    }

    /// Whether the result is ready (waiting would not block).
    pub fn is_finished(&self) -> bool {
        self.slot.lock().done
    }

    /// Cancels the task: if it has not finished, its result becomes
    /// [`TaskFailure::Cancelled`] at once. A queued task never runs. A
    /// running task is stopped: a worker process is killed and replaced; a
    /// thread worker stops it at its next check if the pool is
    /// interruptible (see [`PoolBuilder::interruptible`](crate::PoolBuilder::interruptible)),
    /// and otherwise lets it run to its end and discards the result.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.slot.complete(Outcome::bare(Err(TaskFailure::Cancelled)));
    }
}

impl<R: DeserializeOwned> TaskHandle<R> {
    /// Blocks until the task has finished and returns its result.
    pub fn wait(self) -> Result<R, TaskError> {
        let outcome = self.wait_outcome();
        self.finish(outcome)
    }

    /// Blocks until the task has finished and returns its result with what
    /// it wrote to stdout and stderr.
    pub fn wait_captured(self) -> Captured<R> {
        let Outcome { result, output } = self.wait_outcome();
        Captured { result: self.finish(Outcome::bare(result)), output }
    }

    fn wait_outcome(&self) -> Outcome {
        let finished = &self.slot.finished;
        // A short task's result usually arrives within the spin budget,
        // sparing this thread a sleep and the worker a wake-up call.
        let _ = spin_for(self.spin, || finished.load(Ordering::Acquire).then_some(()));
        let mut state = self.slot.lock();
        loop {
            if let Some(outcome) = state.result.take() {
                return outcome;
            }
            state = self.slot.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits at most `timeout`: the result if the task finished in time,
    /// otherwise the handle back, to wait again later.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<R, TaskError>, Self> {
        let deadline = Instant::now() + timeout;
        let mut state = self.slot.lock();
        loop {
            if let Some(result) = state.result.take() {
                drop(state);
                return Ok(self.finish(result));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(state);
                return Err(self);
            }
            state = self.slot.ready.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn finish(&self, outcome: Outcome) -> Result<R, TaskError> {
        self.output.deliver(&self.task, 0, &outcome.output);
        decode_item::<R>(outcome.result).map_err(|failure| TaskError { task: self.task.to_string(), index: 0, failure })
    }
}

impl<R: DeserializeOwned> Future for TaskHandle<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        match state.result.take() {
            Some(result) => {
                drop(state);
                Poll::Ready(self.finish(result))
            }
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A handle whose task can never run (the pool is gone).
pub(crate) fn closed_slot() -> Arc<HandleSlot> {
    let slot = Arc::new(HandleSlot::default());
    slot.complete(Outcome::bare(Err(TaskFailure::PoolClosed)));
    slot
}
