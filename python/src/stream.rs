//! A running map, as the Python iterator `wasmpool.MapIterator`.
//!
//! The stream owns its pool (an `Arc`, so closing the pool's Python object
//! does not pull it from under a running map) and the library's map over
//! it. Waiting is done with the interpreter released, in slices of
//! [`WAIT_SLICE`], checking between slices for a signal: Ctrl-C raises
//! `KeyboardInterrupt` within one slice, and dropping the stream cancels
//! the map (queued inputs are skipped, running ones stopped where the
//! pool can).
//!
//! Results are turned into Python values here ([`values::decode`]), and a
//! failed input's exception gets the input's value and, for a built-in
//! exception of a task written in Python, its Python type
//! (`wasmpool.errors.with_python_type`): no Python-level code runs per
//! input. A map's messages and progress reports go to its callbacks,
//! called on the thread iterating it, each before its input's result.

use crate::errors::task_exception;
use crate::inputs::{InputError, Pending, PyInputs};
use crate::values::{self, Arity};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyIterator, PyList};
use pyo3::{PyTraverseError, PyVisit};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
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
    /// A result already there, taken without waiting.
    fn next_ready(&mut self) -> Option<Item> {
        match self {
            Flow::Ordered { stream, next_index } => stream.next_ready().map(|result| numbered(next_index, result)),
            Flow::Unordered(stream) => stream.next_ready(),
        }
    }

    fn next_timeout(&mut self, timeout: Duration) -> Poll<Option<Item>> {
        match self {
            Flow::Ordered { stream, next_index } => {
                stream.next_timeout(timeout).map(|item| item.map(|result| numbered(next_index, result)))
            }
            Flow::Unordered(stream) => stream.next_timeout(timeout),
        }
    }
}

/// An ordered map's result with its input's index: the next one.
fn numbered(next_index: &mut usize, result: Result<String, TaskError>) -> Item {
    let index = *next_index;
    *next_index += 1;
    (index, result)
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
    pub arity: Arity,
    pub ordered: bool,
    pub chunk_size: Option<usize>,
    pub deadline: Option<Duration>,
    pub fuel: Option<u64>,
    pub seed: Option<u64>,
    /// How many inputs there are, if known (`len()`).
    pub total: Option<usize>,
    /// Iterating yields `(index, result)` pairs.
    pub with_index: bool,
    /// `messages(index, message)`, called for each message a task sends.
    pub messages: Option<Py<PyAny>>,
    /// `task_progress(index, done, total)`, for each progress report.
    pub task_progress: Option<Py<PyAny>>,
}

/// The results of a map (`Pool.imap`, `Pool.imap_unordered`; `Pool.map`
/// collects one), one per input.
///
/// A failed input raises its `wasmpool.errors.TaskError` where its result
/// would be; iterating on goes on with the next input's result, as with
/// `multiprocessing`. `len()` works when the inputs had a length (so
/// progress bars such as tqdm show a total). Closing it (or leaving a
/// `with` block, or dropping it) cancels the inputs not yet run.
#[pyclass(module = "wasmpool", name = "MapIterator")]
pub(crate) struct Stream {
    running: Mutex<Option<Running>>,
    input_error: InputError,
    pending: Arc<Pending>,
    events: Option<JsonEvents>,
    state: Mutex<Flowing>,
    task: String,
    total: Option<usize>,
    with_index: bool,
    messages: Option<Py<PyAny>>,
    task_progress: Option<Py<PyAny>>,
    /// Set by `close()`: the iteration stops the map at its next look.
    close_requested: AtomicBool,
    /// Whether results were taken (`__next__` or `_collect`).
    iterated: AtomicBool,
}

/// Events taken from the map and not yet handed to a callback (a callback
/// that raises leaves the rest here for the next call), and a result held
/// back behind events queued before it.
#[derive(Default)]
struct Flowing {
    queue: VecDeque<JsonEvent>,
    held: Option<Held>,
    /// Results taken since signals were last checked.
    unchecked: u32,
}

/// Results taken between two checks for Ctrl-C besides those at every
/// wait: when the workers keep ahead of Python, no wait times out.
const CHECK_SIGNALS_EVERY: u32 = 1024;

/// A result held back behind the events queued before it.
struct Held {
    item: Option<Item>,
    /// Events still to be taken before `item` goes.
    before: usize,
}

/// One input's outcome: its index, and its value or its exception.
type Outcome<'py> = (usize, Result<Bound<'py, PyAny>, Bound<'py, PyAny>>);

impl Stream {
    pub(crate) fn start(pool: Arc<Pool>, spec: StreamSpec, items: Py<PyIterator>) -> Result<Self, wasmpool::Error> {
        let input_error = InputError::default();
        let pending = Arc::new(Pending::default());
        let inputs = PyInputs::new(items, spec.arity, spec.total, pending.clone(), input_error.clone());
        let listen = spec.messages.is_some() || spec.task_progress.is_some();
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
            if listen {
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
        Ok(Stream {
            running: Mutex::new(Some(running)),
            input_error,
            pending,
            events,
            state: Mutex::new(Flowing::default()),
            task: spec.task,
            total: spec.total,
            with_index: spec.with_index,
            messages: spec.messages,
            task_progress: spec.task_progress,
            close_requested: AtomicBool::new(false),
            iterated: AtomicBool::new(false),
        })
    }

    /// The next input's outcome; `None` at the end, or the exception the
    /// inputs' iterator raised, once the inputs before it have their
    /// results. Events queued before it go to their callbacks first.
    fn next_outcome<'py>(&self, py: Python<'py>, running: &mut Option<Running>) -> PyResult<Option<Outcome<'py>>> {
        let slice = if self.events.is_some() { LISTEN_SLICE } else { WAIT_SLICE };
        let waiting = || self.events.as_ref().map_or(0, JsonEvents::len);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            // `close()` from a callback, or from another thread while this
            // one waited: the map stops here.
            if self.close_requested.load(Ordering::SeqCst) {
                state.held = None;
                state.queue.clear();
                Self::stop(py, running);
                return Ok(None);
            }
            if let Some(event) = state.queue.pop_front() {
                self.dispatch(py, event)?;
                continue;
            }
            // `fresh`: just taken from the map, not a held result released.
            let (polled, fresh) = match state.held.take() {
                // Events queued before the held result are still to go.
                Some(Held { item, before }) if before > 0 && waiting() > 0 => {
                    state.held = Some(Held { item, before: before.min(waiting()) });
                    self.take_events(&mut state);
                    continue;
                }
                // Those are taken; events queued since come after it.
                Some(Held { item, .. }) => (Poll::Ready(item), false),
                None => {
                    let Some(flow) = running.as_mut() else { return Ok(None) };
                    // With events waiting, only a result already there is
                    // taken (and held behind them): events sent faster than
                    // they are taken do not hold the results back for long.
                    let wait = if waiting() > 0 { Duration::ZERO } else { slice };
                    // A result already there is taken without giving up the
                    // interpreter: most of a chunk's are.
                    let ready = flow.with_dependent_mut(|_, flow| flow.next_ready());
                    let polled = match ready {
                        Some(item) => Poll::Ready(Some(item)),
                        None => py.detach(|| flow.with_dependent_mut(|_, flow| flow.next_timeout(wait))),
                    };
                    match polled {
                        Poll::Pending if waiting() > 0 => {
                            self.take_events(&mut state);
                            continue;
                        }
                        polled => (polled, true),
                    }
                }
            };
            if fresh && matches!(polled, Poll::Ready(Some(_))) {
                state.unchecked += 1;
                if state.unchecked >= CHECK_SIGNALS_EVERY {
                    state.unchecked = 0;
                    if let Err(interrupted) = py.check_signals() {
                        Self::stop(py, running);
                        return Err(interrupted);
                    }
                }
            }
            match polled {
                Poll::Ready(item) if fresh && waiting() > 0 => {
                    // Came while events were queued: after those, which
                    // its own input's events are among.
                    state.held = Some(Held { item, before: waiting() });
                }
                Poll::Ready(Some((index, result))) => return self.outcome(py, index, result).map(Some),
                Poll::Ready(None) => {
                    *running = None;
                    let failed = self.input_error.lock().unwrap_or_else(PoisonError::into_inner).take();
                    return match failed {
                        Some(error) => Err(error),
                        None => Ok(None),
                    };
                }
                Poll::Pending => {
                    if let Err(interrupted) = py.check_signals() {
                        Self::stop(py, running);
                        return Err(interrupted);
                    }
                }
            }
        }
    }

    /// Moves the events waiting (at most the queue's capacity) to the
    /// queue of those to dispatch.
    fn take_events(&self, state: &mut Flowing) {
        let Some(events) = &self.events else { return };
        let mut taken = 0;
        while taken < EVENT_CAPACITY {
            let Some(event) = events.try_next() else { break };
            state.queue.push_back(event);
            taken += 1;
        }
        if let Some(held) = state.held.as_mut() {
            held.before = held.before.saturating_sub(taken);
        }
    }

    /// Hands one event to its callback: a message (or the `TaskError`
    /// saying why it is not JSON, or cannot be read here) to `messages`,
    /// a progress report to `task_progress`.
    fn dispatch(&self, py: Python<'_>, event: JsonEvent) -> PyResult<()> {
        match event {
            JsonEvent::Progress { index, done, total } => {
                if let Some(callback) = &self.task_progress {
                    callback.call1(py, (index, done, total))?;
                }
            }
            JsonEvent::Message { index, message } => {
                let Some(callback) = &self.messages else { return Ok(()) };
                let message = match message {
                    Ok(json) => match values::decode(py, &json) {
                        Ok(value) => value,
                        Err(e) => unreadable(py, &self.task, index, e, "message")?,
                    },
                    Err(error) => task_exception(py, &error)?,
                };
                callback.call1(py, (index, message))?;
            }
        }
        Ok(())
    }

    /// Input `index`'s value, or its exception with the input attached.
    fn outcome<'py>(&self, py: Python<'py>, index: usize, result: Result<String, TaskError>) -> PyResult<Outcome<'py>> {
        let input = self.pending.take(index);
        let error = match result {
            Ok(json) => match values::decode(py, &json) {
                Ok(value) => return Ok((index, Ok(value))),
                Err(e) => unreadable(py, &self.task, index, e, "result")?,
            },
            Err(error) => task_exception(py, &error)?,
        };
        if let Some(input) = input {
            error.setattr("input", input)?;
        }
        static TYPED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let typed = TYPED.import(py, "wasmpool.errors", "with_python_type")?.call1((error,))?;
        Ok((index, Err(typed)))
    }

    fn lock_running(&self) -> PyResult<std::sync::MutexGuard<'_, Option<Running>>> {
        match self.running.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::WouldBlock) => {
                Err(PyRuntimeError::new_err("this map is already being iterated by another thread"))
            }
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        }
    }

    /// Stops the map with the interpreter released (dropping it may wait
    /// for a worker to let go).
    fn stop(py: Python<'_>, running: &mut Option<Running>) {
        let stopped = running.take();
        py.detach(move || drop(stopped));
    }
}

/// The error of an input whose result (or message) JSON this Python
/// cannot read (nested past its recursion limit, an integer over its
/// digit limit): `wasmpool.errors.BadResult`.
pub(crate) fn unreadable<'py>(
    py: Python<'py>,
    task: &str,
    index: usize,
    cause: PyErr,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if !(cause.is_instance_of::<pyo3::exceptions::PyValueError>(py)
        || cause.is_instance_of::<pyo3::exceptions::PyRecursionError>(py))
    {
        return Err(cause);
    }
    static UNREADABLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    UNREADABLE.import(py, "wasmpool._args", "unreadable_result")?.call1((task, index, cause.into_value(py), what))
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next result (with `with_index`, an `(index, result)` pair); a
    /// failed input raises its error here.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.iterated.store(true, Ordering::Relaxed);
        let mut running = self.lock_running()?;
        match self.next_outcome(py, &mut running)? {
            None => Ok(None),
            Some((_, Err(error))) => Err(PyErr::from_value(error)),
            Some((index, Ok(value))) if self.with_index => Ok(Some((index, value).into_pyobject(py)?.into_any())),
            Some((_, Ok(value))) => Ok(Some(value)),
        }
    }

    /// How many inputs the map has: known when they had a length.
    fn __len__(&self) -> PyResult<usize> {
        self.total.ok_or_else(|| {
            PyTypeError::new_err(
                "len() of this map is unknown: its inputs have no length (a generator); \
                 pass a list, or give a progress bar its total yourself",
            )
        })
    }

    /// Every input's outcome, in input order (`Pool.map`, `map_each`,
    /// `call`; for a map not iterated yet): a list of results, or, with
    /// `raise_first`, the first failure raised (the inputs not yet run are
    /// skipped); otherwise failures are returned in their inputs' places.
    /// `progress(done, total)` is called after each result. The map is
    /// stopped on the way out.
    #[pyo3(signature = (progress=None, raise_first=true))]
    fn _collect<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Bound<'py, PyAny>>,
        raise_first: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        if self.iterated.swap(true, Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("this map was iterated already: collect() needs all of it"));
        }
        let mut running = self.lock_running()?;
        // Grown as results come, from a bounded start: `len()` may be huge.
        let mut outcomes: Vec<Option<Bound<'py, PyAny>>> = Vec::with_capacity(self.total.unwrap_or(0).min(1 << 16));
        let mut done = 0usize;
        let collected = loop {
            let (index, outcome) = match self.next_outcome(py, &mut running) {
                Ok(Some(next)) => next,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let value = match outcome {
                Ok(value) => value,
                Err(error) if raise_first => break Err(PyErr::from_value(error)),
                Err(error) => error,
            };
            if outcomes.len() <= index {
                outcomes.resize(index + 1, None);
            }
            outcomes[index] = Some(value);
            done += 1;
            if let Some(progress) = &progress
                && let Err(e) = progress.call1((done, self.total))
            {
                break Err(e);
            }
        };
        Self::stop(py, &mut running);
        collected?;
        if self.close_requested.load(Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("the map was closed before every input had its result"));
        }
        // Every index below the last has its outcome: the map ran them all.
        PyList::new(py, outcomes.into_iter().map(|outcome| outcome.unwrap_or_else(|| py.None().into_bound(py))))
    }

    /// Stops the map: inputs not yet run are skipped, running ones stopped
    /// where the pool can; iterating further ends at once. Called from one
    /// of the map's callbacks, or from another thread while one iterates,
    /// the map stops at the iteration's next look (within 50 ms).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.close_requested.store(true, Ordering::SeqCst);
        let mut running = match self.running.try_lock() {
            Ok(guard) => guard,
            // Being iterated: from a callback of this map, or from another
            // thread while this one waits. The iteration stops the map at
            // its next look, within one wait slice.
            Err(TryLockError::WouldBlock) => return Ok(()),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        // No `__next__` runs now (it holds `running` throughout): a result
        // it held back goes too, so that iterating ends at once.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.held = None;
        state.queue.clear();
        Self::stop(py, &mut running);
        Ok(())
    }

    /// For the garbage collector: a callback (a bound method whose object
    /// holds this iterator) or an input may close a cycle through it.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for callback in [&self.messages, &self.task_progress].into_iter().flatten() {
            visit.call(callback)?;
        }
        self.pending.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.messages = None;
        self.task_progress = None;
        self.pending.clear();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _kind: Option<Bound<'_, PyAny>>,
        _value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.close(py)
    }
}
