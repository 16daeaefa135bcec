//! A map's inputs: a Python iterator of JSON texts, pulled by the Rust
//! map as it has room for more (so a generator streams through in bounded
//! memory), with the interpreter attached for each pull.

use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

/// The first exception the Python iterator raised, if any: the map ends
/// its inputs there, and the stream raises it once the inputs before it
/// have their results.
pub(crate) type InputError = Arc<Mutex<Option<PyErr>>>;

/// A Python iterator yielding one `str` of JSON per input.
pub(crate) struct PyInputs {
    iterator: Option<Py<PyAny>>,
    error: InputError,
}

impl PyInputs {
    pub(crate) fn new(iterator: Py<PyAny>, error: InputError) -> Self {
        PyInputs { iterator: Some(iterator), error }
    }

    fn fail(&mut self, error: PyErr) {
        self.iterator = None;
        let mut slot = self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }
}

impl Iterator for PyInputs {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let iterator = self.iterator.as_ref()?;
        let pulled = Python::attach(|py| -> PyResult<Option<Vec<u8>>> {
            let iterator = iterator.bind(py);
            match iterator.call_method0("__next__") {
                Ok(item) => Ok(Some(item.extract::<String>()?.into_bytes())),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => Ok(None),
                Err(e) => Err(e),
            }
        });
        match pulled {
            Ok(Some(bytes)) => Some(bytes),
            Ok(None) => {
                self.iterator = None;
                None
            }
            Err(error) => {
                self.fail(error);
                None
            }
        }
    }
}
