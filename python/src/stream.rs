//! A running map, as a Python iterator of `(index, json, error)`.
//!
//! The stream owns its pool (an `Arc`, so closing the pool's Python object
//! does not pull it from under a running map) and the library's map over
//! it. Each `__next__` waits with the interpreter released, in slices of
//! [`WAIT_SLICE`], checking between slices for a signal: Ctrl-C raises
//! `KeyboardInterrupt` within one slice, and dropping the stream cancels
//! the map (queued inputs are skipped, running ones stopped where the
//! pool can).

use crate::errors::task_exception;
use crate::inputs::{InputError, PyInputs};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, TryLockError};
use std::task::Poll;
use std::time::Duration;
use wasmpool::{Imap, ImapUnordered, JsonEvent, JsonEvents, JsonInputs, Pool, TaskError};

/// Longest wait between two checks for Ctrl-C.
const WAIT_SLICE: Duration = Duration::from_millis(50);
/// Longest wait between two looks at the tasks' messages, when someone
/// listens: a task whose queue of messages is full waits about this long.
const LISTEN_SLICE: Duration = Duration::from_millis(5);
/// Messages and progress reports a listened map holds before its tasks
/// wait for room.
const EVENT_CAPACITY: usize = 64;

type Inputs = JsonInputs<PyInputs>;

/// The library's map, in input order or in completion order.
pub(crate) enum Flow<'pool> {
    Ordered { stream: Imap<'pool, Inputs, String>, next_index: usize },
    Unordered(ImapUnordered<'pool, Inputs, String>),
}

type Item = (usize, Result<String, TaskError>);

impl Flow<'_> {
    fn next_timeout(&mut self, timeout: Duration) -> Poll<Option<Item>> {
        match self {
            Flow::Ordered { stream, next_index } => stream.next_timeout(timeout).map(|item| {
                item.map(|result| {
                    let index = *next_index;
                    *next_index += 1;
                    (index, result)
                })
            }),
            Flow::Unordered(stream) => stream.next_timeout(timeout),
        }
    }
}

self_cell::self_cell!(
    /// A pool and a map running on it.
    pub(crate) struct Running {
        owner: Arc<Pool>,
        #[covariant]
        dependent: Flow,
    }
);

/// What a stream is asked to run.
pub(crate) struct StreamSpec {
    pub task: String,
    pub ordered: bool,
    pub chunk_size: Option<usize>,
    pub deadline: Option<Duration>,
    pub fuel: Option<u64>,
    pub seed: Option<u64>,
    /// Whether the tasks' messages and progress are wanted (`events`).
    pub listen: bool,
}

/// A map running on the pool: iterate it for `(index, json, error)`, one
/// per input, where `json` is the result's JSON text, or `error` the
/// task's exception (a `wasmpool.errors.TaskError`). A listened map
/// (`listen=True`) also yields `(None, None, None)` when its tasks have
/// sent messages or progress, which `events()` then returns; every event
/// of an input comes before its result.
#[pyclass(module = "wasmpool._native")]
pub(crate) struct Stream {
    running: Mutex<Option<Running>>,
    input_error: InputError,
    events: Option<JsonEvents>,
    /// A result (or the end, `None`) that came while events were still
    /// waiting, with how many of them: returned once those are taken (by
    /// `events()`), so that an input's events come before its result, and
    /// events sent after it do not hold it back.
    held: Mutex<Option<Held>>,
}

/// A result held back behind the events queued before it.
struct Held {
    item: Option<Item>,
    /// Events still to be taken before `item` goes.
    before: usize,
}

/// One event as Python sees it: `("message", index, json, error)` or
/// `("progress", index, done, total)`.
type PyEvent = (&'static str, usize, Py<PyAny>, Py<PyAny>);

impl Stream {
    pub(crate) fn start(pool: Arc<Pool>, spec: StreamSpec, inputs: Py<PyAny>) -> Result<Self, wasmpool::Error> {
        let input_error = InputError::default();
        let inputs = PyInputs::new(inputs, input_error.clone());
        let mut events = None;
        let running = Running::try_new(pool, |pool| -> Result<Flow<'_>, wasmpool::Error> {
            let mut task = pool.task(&spec.task)?;
            if let Some(size) = spec.chunk_size {
                task = task.chunk_size(size);
            }
            if let Some(deadline) = spec.deadline {
                task = task.deadline(deadline);
            }
            if let Some(fuel) = spec.fuel {
                task = task.fuel(fuel);
            }
            if let Some(seed) = spec.seed {
                task = task.seed(seed);
            }
            let mut task = task.json()?;
            if spec.listen {
                let (listened, queue) = task.listened(EVENT_CAPACITY);
                task = listened;
                events = Some(queue);
            }
            Ok(if spec.ordered {
                Flow::Ordered { stream: task.imap(inputs)?, next_index: 0 }
            } else {
                Flow::Unordered(task.imap_unordered(inputs)?)
            })
        })?;
        Ok(Stream { running: Mutex::new(Some(running)), input_error, events, held: Mutex::new(None) })
    }
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next `(index, json, error)`; raises `StopIteration` at the end,
    /// or the exception the inputs' iterator raised, once the inputs
    /// before it have their results.
    #[allow(clippy::type_complexity)]
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(Option<usize>, Option<String>, Option<Py<PyAny>>)>> {
        let mut running = match self.running.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err("this map is already being iterated by another thread"));
            }
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let slice = if self.events.is_some() { LISTEN_SLICE } else { WAIT_SLICE };
        let queued = || self.events.as_ref().map_or(0, JsonEvents::len);
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            // `fresh`: just taken from the map, not a held result released.
            let (polled, fresh) = match held.take() {
                // Events queued before the held result are still to go.
                Some(Held { item, before }) if before > 0 && queued() > 0 => {
                    *held = Some(Held { item, before: before.min(queued()) });
                    return Ok(Some((None, None, None)));
                }
                // Those are taken; events queued since come after it.
                Some(Held { item, .. }) => (Poll::Ready(item), false),
                None => {
                    let Some(flow) = running.as_mut() else { return Ok(None) };
                    // With events waiting, only a result already there is
                    // taken (and held behind them): events sent faster than
                    // they are taken do not hold the results back for long.
                    let wait = if queued() > 0 { Duration::ZERO } else { slice };
                    match py.detach(|| flow.with_dependent_mut(|_, flow| flow.next_timeout(wait))) {
                        Poll::Pending if queued() > 0 => return Ok(Some((None, None, None))),
                        polled => (polled, true),
                    }
                }
            };
            match polled {
                Poll::Ready(item) if fresh && queued() > 0 => {
                    // Came while events were queued: after those, which
                    // its own input's events are among.
                    *held = Some(Held { item, before: queued() });
                }
                Poll::Ready(Some((index, Ok(json)))) => return Ok(Some((Some(index), Some(json), None))),
                Poll::Ready(Some((index, Err(error)))) => {
                    let exception = task_exception(py, &error)?;
                    return Ok(Some((Some(index), None, Some(exception.unbind()))));
                }
                Poll::Ready(None) => {
                    *running = None;
                    let failed = self.input_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                    return match failed {
                        Some(error) => Err(error),
                        None => Ok(None),
                    };
                }
                Poll::Pending => {
                    if let Err(interrupted) = py.check_signals() {
                        // Stop the map now, with the interpreter released:
                        // dropping it may wait for a worker to let go.
                        let stopped = running.take();
                        py.detach(move || drop(stopped));
                        return Err(interrupted);
                    }
                }
            }
        }
    }

    /// The messages and progress reports waiting (at most the queue's
    /// capacity): `("message", index, json, error)`, where `json` is the
    /// message's JSON text or `error` the `TaskError` saying why it is not
    /// JSON, and `("progress", index, done, total)`.
    fn events(&self, py: Python<'_>) -> PyResult<Vec<PyEvent>> {
        let Some(events) = &self.events else { return Ok(Vec::new()) };
        // Taken by the thread iterating the map, between its `__next__`
        // calls; from another thread while one runs, nothing.
        let mut held = match self.held.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => return Ok(Vec::new()),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let mut taken = Vec::new();
        while taken.len() < EVENT_CAPACITY {
            let Some(event) = events.try_next() else { break };
            taken.push(match event {
                JsonEvent::Message { index, message: Ok(json) } => {
                    ("message", index, json.into_pyobject(py)?.into_any().unbind(), py.None())
                }
                JsonEvent::Message { index, message: Err(error) } => {
                    ("message", index, py.None(), task_exception(py, &error)?.unbind())
                }
                JsonEvent::Progress { index, done, total } => (
                    "progress",
                    index,
                    done.into_pyobject(py)?.into_any().unbind(),
                    total.into_pyobject(py)?.into_any().unbind(),
                ),
            });
        }
        if let Some(held) = held.as_mut() {
            held.before = held.before.saturating_sub(taken.len());
        }
        Ok(taken)
    }

    /// Stops the map: inputs not yet run are skipped, running ones stopped
    /// where the pool can; iterating further ends at once.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        let stopped = match self.running.try_lock() {
            Ok(mut guard) => guard.take(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err("this map is being iterated by another thread"));
            }
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().take(),
        };
        // No `__next__` runs now (it holds `running` throughout): a result
        // it held back goes too, so that iterating ends at once.
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        py.detach(move || drop(stopped));
        Ok(())
    }
}
