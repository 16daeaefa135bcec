//! Many running tasks and their events, as the Python iterator
//! `wasmpool.Exchange` (the library's [`wasmpool::Exchange`], as
//! pprocess's): tasks are started one by one, and iterating gives their
//! messages, progress reports and results as they arrive, from all of them
//! at once, each as a `wasmpool.Message`, `wasmpool.Progress` or
//! `wasmpool.Finished` (python/wasmpool/_events.py).
//!
//! Waiting is done with the interpreter released, in slices of
//! [`WAIT_SLICE`], checking for Ctrl-C between them. Closing the exchange
//! (or dropping it) cancels its unfinished tasks.

use crate::errors::{pool_error, task_exception};
use crate::values::{self, Arity};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{PyTraverseError, PyVisit};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;
use wasmpool::{Event, Pool, TaskError};

/// Longest wait between two checks for Ctrl-C.
const WAIT_SLICE: Duration = Duration::from_millis(50);

type JsonExchange<'pool> = wasmpool::Exchange<'pool, Box<RawValue>, Box<RawValue>>;

self_cell::self_cell!(
    /// A pool and an exchange over it.
    struct Running {
        owner: Arc<Pool>,
        #[covariant]
        dependent: JsonExchange,
    }
);

/// The state behind the lock: the exchange (`None` once closed) and each
/// unfinished task's name and input as given, for its exception.
struct State {
    running: Option<Running>,
    started: HashMap<usize, (String, Py<PyAny>)>,
    /// An event taken from the exchange whose conversion to Python failed
    /// (Ctrl-C in the middle, say): handed out first next time, so that no
    /// task's `Finished` is lost.
    unconverted: Option<JsonEvent>,
}

type JsonEvent = Event<Box<RawValue>, Box<RawValue>>;

/// Tasks started on a pool and the events they send, taken by iterating.
/// Made by `wasmpool.Pool.exchange`, which documents it. One thread at a
/// time starts and iterates (another is told so); `cancel` works from any.
#[pyclass(module = "wasmpool._native", frozen)]
pub(crate) struct NativeExchange {
    state: Mutex<State>,
    /// Set by `cancel()`: the iteration cancels at its next look, if
    /// another thread is waiting in it; `start` refuses from then on.
    cancel_requested: AtomicBool,
    /// Set by `close()` while another thread iterates: that thread closes
    /// the exchange at its next look.
    close_requested: AtomicBool,
}

impl NativeExchange {
    pub(crate) fn new(pool: Arc<Pool>, capacity: usize) -> Self {
        let running = Running::new(pool, |pool| pool.exchange_with_capacity(capacity));
        NativeExchange {
            state: Mutex::new(State { running: Some(running), started: HashMap::new(), unconverted: None }),
            cancel_requested: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
        }
    }

    /// The state, if no other thread is using the exchange: waiting for
    /// it with the interpreter held could deadlock with that thread.
    fn lock(&self) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::WouldBlock) => {
                Err(PyRuntimeError::new_err("this exchange is in use by another thread (start and iterate from one)"))
            }
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        }
    }
}

/// The classes of `wasmpool._events`, imported once.
fn event_class<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyAny>> {
    static MESSAGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static PROGRESS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static FINISHED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cell = match name {
        "Message" => &MESSAGE,
        "Progress" => &PROGRESS,
        _ => &FINISHED,
    };
    Ok(cell.import(py, "wasmpool._events", name)?.clone())
}

#[pymethods]
impl NativeExchange {
    /// Starts `task` on `item` (one input, encoded for a task of `arity`
    /// as a map's inputs are; `input` is the input as the caller wrote it,
    /// for its exception) and returns its number in this exchange.
    fn start(
        &self,
        py: Python<'_>,
        task: &str,
        item: &Bound<'_, PyAny>,
        arity: (usize, Option<usize>),
        input: Py<PyAny>,
    ) -> PyResult<usize> {
        let mut args = Vec::new();
        values::encode_item(item, Arity { required: arity.0, most: arity.1 }, &mut args)?;
        if self.cancel_requested.load(Ordering::Relaxed) {
            return Err(PyRuntimeError::new_err("this exchange was cancelled or closed: start tasks on a new one"));
        }
        let mut state = self.lock()?;
        let Some(running) = state.running.as_mut() else {
            return Err(PyRuntimeError::new_err("this exchange is closed"));
        };
        let started = running.with_dependent_mut(|_, exchange| exchange.start_json(task, &args));
        // A refusal (Error::Task) becomes its task's exception there too.
        let number = started.map_err(|e| pool_error(py, e))?;
        state.started.insert(number, (task.to_owned(), input));
        Ok(number)
    }

    /// How many started tasks have not finished.
    fn running(&self) -> PyResult<usize> {
        Ok(self.lock()?.running.as_ref().map_or(0, |running| running.borrow_dependent().running()))
    }

    /// The next event, waiting as long as it takes; `None` once every task
    /// started has finished (or the exchange is closed). Ctrl-C while it
    /// waits cancels the unfinished tasks and raises.
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut state = self.lock()?;
        let converted = loop {
            if self.close_requested.load(Ordering::Relaxed) {
                close_state(py, &mut state);
            }
            if let Some(event) = state.unconverted.take() {
                break self.converted(py, &mut state, event);
            }
            let Some(running) = state.running.as_mut() else { return Ok(None) };
            if self.cancel_requested.load(Ordering::Relaxed) {
                running.borrow_dependent().cancel();
            }
            if running.borrow_dependent().running() == 0 {
                return Ok(None);
            }
            let event = py.detach(|| running.with_dependent_mut(|_, exchange| exchange.next_timeout(WAIT_SLICE)));
            match event {
                Some(event) => break self.converted(py, &mut state, event),
                None => {
                    if let Err(interrupted) = py.check_signals() {
                        running.borrow_dependent().cancel();
                        return Err(interrupted);
                    }
                }
            }
        };
        // A cancel or close asked for while the event was converted.
        if self.close_requested.load(Ordering::Relaxed) {
            close_state(py, &mut state);
        } else if let (true, Some(running)) = (self.cancel_requested.load(Ordering::Relaxed), state.running.as_ref()) {
            running.borrow_dependent().cancel();
        }
        converted.map(Some)
    }

    /// Stops the unfinished tasks: each still ends with a `Finished` event
    /// (its error `TaskCancelled`, or its result if it ran to the end).
    fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::Relaxed);
        if let Ok(state) = self.state.try_lock()
            && let Some(running) = state.running.as_ref()
        {
            running.borrow_dependent().cancel();
        }
    }

    /// Cancels the unfinished tasks and lets go of them and of the pool;
    /// the events not taken are dropped. From another thread, while one
    /// iterates: that thread closes the exchange at its next look (within
    /// 50 ms).
    fn close(&self, py: Python<'_>) {
        self.cancel_requested.store(true, Ordering::Relaxed);
        self.close_requested.store(true, Ordering::Relaxed);
        if let Ok(mut state) = self.state.try_lock() {
            close_state(py, &mut state);
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Busy: another thread iterates, and holds what it holds alive.
        if let Ok(state) = self.state.try_lock() {
            for (_, input) in state.started.values() {
                visit.call(input)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut state) = self.state.try_lock() {
            state.started.clear();
        }
    }
}

/// Cancels the exchange's unfinished tasks and lets go of them and of the
/// pool; the events not taken are dropped.
fn close_state(py: Python<'_>, state: &mut State) {
    state.started.clear();
    state.unconverted = None;
    let running = state.running.take();
    // Dropping waits for nothing the interpreter holds.
    py.detach(move || drop(running));
}

impl NativeExchange {
    /// `event` as the Python event object; if that fails, the event is
    /// kept to be converted again by the next call.
    fn converted<'py>(&self, py: Python<'py>, state: &mut State, event: JsonEvent) -> PyResult<Bound<'py, PyAny>> {
        let done = self.event(py, state, &event);
        if done.is_err() {
            state.unconverted = Some(event);
        } else if let Event::Finished { task, .. } = event {
            state.started.remove(&task);
        }
        done
    }

    /// `event` as the Python event object.
    fn event<'py>(&self, py: Python<'py>, state: &State, event: &JsonEvent) -> PyResult<Bound<'py, PyAny>> {
        match event {
            Event::Message { task, message } => {
                let message = message.as_ref().map(|m| m.get().to_owned()).map_err(Clone::clone);
                let (value, error) = self.value_or_error(py, state, *task, message, "message")?;
                event_class(py, "Message")?.call1((*task, value, error))
            }
            Event::Progress { task, done, total } => event_class(py, "Progress")?.call1((*task, *done, *total)),
            Event::Finished { task, result } => {
                let result = result.as_ref().map(|r| r.get().to_owned()).map_err(Clone::clone);
                let (value, error) = self.value_or_error(py, state, *task, result, "result")?;
                event_class(py, "Finished")?.call1((*task, value, error))
            }
        }
    }

    /// A message's or result's value, or its exception (with the task's
    /// input, and the Python type of a built-in exception of a task written
    /// in Python).
    fn value_or_error<'py>(
        &self,
        py: Python<'py>,
        state: &State,
        task: usize,
        outcome: Result<String, TaskError>,
        what: &str,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let started = state.started.get(&task).map(|(name, input)| (name.clone(), input.clone_ref(py)));
        let none = py.None().into_bound(py);
        let name = started.as_ref().map_or("", |(name, _)| name.as_str());
        let error = match outcome {
            Ok(json) => match values::decode(py, &json) {
                Ok(value) => return Ok((value, none)),
                Err(cause) => crate::stream::unreadable(py, name, task, cause, what)?,
            },
            Err(error) => task_exception(py, &error)?,
        };
        if let Some((_, input)) = started {
            error.setattr("input", input)?;
        }
        static TYPED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let typed = TYPED.import(py, "wasmpool.errors", "with_python_type")?.call1((error,))?;
        Ok((none, typed))
    }
}
