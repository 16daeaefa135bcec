//! A map's inputs: a Python iterator of argument values, pulled by the
//! Rust map as it has room for more and encoded to JSON here
//! ([`values::encode_item`]). Inputs of a known length (a list, a `range`)
//! are pulled a batch per time the interpreter is attached, at most
//! [`MAX_BATCH`] ahead of what the map asked for; others (a generator,
//! which may wait for each item) one at a time, so an endless generator
//! streams through in bounded memory and nothing pulled waits for the next.

use crate::values::{self, Arity};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use pyo3::{PyTraverseError, PyVisit};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Most inputs of a known length pulled from Python per attach. A map
/// starts with one and doubles up to this while it keeps asking, so a
/// single call pulls one.
pub(crate) const MAX_BATCH: usize = 64;

/// The first exception the Python iterator raised (or encoding an input
/// did), if any: the map ends its inputs there, and the stream raises it
/// once the inputs before it have their results.
pub(crate) type InputError = Arc<Mutex<Option<PyErr>>>;

/// Each input's Python value from when it is pulled until its result is
/// taken: the `input` of its error. The inputs in flight are a window of
/// consecutive indices, so a ring from the oldest one still out.
#[derive(Default)]
pub(crate) struct Pending {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    /// The index of `values[0]`.
    first: usize,
    values: VecDeque<Option<Py<PyAny>>>,
}

impl Pending {
    /// Input `index`'s value, which leaves the table.
    pub(crate) fn take(&self, index: usize) -> Option<Py<PyAny>> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = index.checked_sub(ring.first)?;
        let value = ring.values.get_mut(slot)?.take();
        while let Some(None) = ring.values.front() {
            ring.values.pop_front();
            ring.first += 1;
        }
        value
    }

    /// Visits the values kept, for the garbage collector; none while the
    /// table is being filled (the collector may run inside the Python code
    /// a refill calls: the inputs' iterator, a `tolist`).
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(ring) = self.ring.try_lock() {
            for value in ring.values.iter().flatten() {
                visit.call(value)?;
            }
        }
        Ok(())
    }

    /// Drops the values kept (the collector breaking a cycle), unless the
    /// table is being filled.
    pub(crate) fn clear(&self) {
        if let Ok(mut ring) = self.ring.try_lock() {
            ring.values.clear();
        }
    }

    /// Keeps input `index`'s value; inputs are added in order of index.
    fn put(ring: &mut Ring, index: usize, value: Py<PyAny>) {
        if ring.values.is_empty() {
            ring.first = index;
        }
        ring.values.push_back(Some(value));
    }
}

/// A Python iterator of a map's inputs, as the JSON each task call takes.
pub(crate) struct PyInputs {
    iterator: Option<Py<PyIterator>>,
    arity: Arity,
    /// Encoded and not yet handed to the map.
    ready: VecDeque<Vec<u8>>,
    /// How many to pull at the next attach.
    batch: usize,
    /// How many inputs there are, if known (their `len()`): the map's
    /// automatic chunk size comes from it.
    total: Option<usize>,
    /// The index of the next input pulled.
    next_index: usize,
    pending: Arc<Pending>,
    error: InputError,
}

impl PyInputs {
    pub(crate) fn new(
        iterator: Py<PyIterator>,
        arity: Arity,
        total: Option<usize>,
        pending: Arc<Pending>,
        error: InputError,
    ) -> Self {
        PyInputs {
            iterator: Some(iterator),
            arity,
            ready: VecDeque::new(),
            batch: 1,
            total,
            next_index: 0,
            pending,
            error,
        }
    }

    fn fail(&mut self, error: PyErr) {
        self.iterator = None;
        let mut slot = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    /// Pulls up to `self.batch` inputs; at the end (or at an error) the
    /// iterator is dropped, the inputs pulled before it kept.
    fn refill(&mut self) {
        let Some(iterator) = self.iterator.as_ref() else { return };
        let wanted = self.batch;
        let mut pulled = Vec::with_capacity(wanted);
        let outcome = Python::attach(|py| -> PyResult<bool> {
            let mut iterator = iterator.bind(py).clone();
            let mut ring = self.pending.ring.lock().unwrap_or_else(PoisonError::into_inner);
            for _ in 0..wanted {
                let Some(item) = iterator.next() else { return Ok(false) };
                let item = item?;
                let index = self.next_index;
                let mut text = Vec::new();
                if let Err(e) = values::encode_item(&item, self.arity, &mut text) {
                    // What cannot be encoded says which input it was; any
                    // other exception (a `tolist` that raised) goes as it is.
                    if !(e.is_instance_of::<PyTypeError>(py) || e.is_instance_of::<PyValueError>(py)) {
                        return Err(e);
                    }
                    let shown = item.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
                    let shown: String = shown.chars().take(80).collect();
                    return Err(PyTypeError::new_err(format!("input {index} ({shown}): {}", e.value(py))));
                }
                Pending::put(&mut ring, index, item.unbind());
                self.next_index += 1;
                pulled.push(text);
            }
            Ok(true)
        });
        self.ready.extend(pulled);
        // Only inputs of a known length come in batches: a generator may
        // wait for each item (a queue, a socket), and the inputs pulled
        // before must not wait with it.
        if self.total.is_some() {
            self.batch = (self.batch * 2).min(MAX_BATCH);
        }
        match outcome {
            Ok(true) => {}
            Ok(false) => self.iterator = None,
            Err(error) => self.fail(error),
        }
    }
}

impl Iterator for PyInputs {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.ready.is_empty() {
            self.refill();
        }
        self.ready.pop_front()
    }

    /// Exact while the inputs' length is known and the iterator has not
    /// ended early (a list shortened while mapped): it sets the chunk size
    /// only.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match (self.total, &self.iterator) {
            (Some(total), Some(_)) => {
                let left = total.saturating_sub(self.next_index) + self.ready.len();
                (left, Some(left))
            }
            (_, None) => (self.ready.len(), Some(self.ready.len())),
            (None, Some(_)) => (self.ready.len(), None),
        }
    }
}
