//! The pool: built from a module's path or bytes with the library's
//! settings, and the calls the Python layer makes on it.

use crate::errors::{closed_error, pool_error, settings_error};
use crate::exchange::NativeExchange;
use crate::stream::{Stream, StreamSpec};
use crate::values::Arity;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use wasmpool::{Pool, ProcessConfig, Settings, WorkerKind};

/// A pool of workers running one Wasm module's tasks. Made by
/// `wasmpool.Pool`, which documents the settings.
#[pyclass(module = "wasmpool._native", frozen)]
pub(crate) struct NativePool {
    /// `None` once closed. Each running map holds its own reference, so
    /// the pool ends when it is closed and its last map is gone.
    pool: RwLock<Option<Arc<Pool>>>,
}

/// A duration in seconds, from Python, checked.
fn seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| PyValueError::new_err(format!("{name} must be a number of seconds >= 0, not {s}")))
        })
        .transpose()
}

impl NativePool {
    fn pool(&self) -> PyResult<Arc<Pool>> {
        let guard = self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.clone().ok_or_else(|| Python::attach(closed_error))
    }
}

#[pymethods]
impl NativePool {
    /// Builds the pool from the module (a path, or bytes) and `settings`
    /// (a JSON object of `wasmpool::Settings` fields, made by
    /// `wasmpool.Pool`); `worker_command` is the worker program of
    /// `processes=True`. Compiling the module runs with the interpreter
    /// released.
    #[new]
    #[pyo3(signature = (module, settings, worker_command=None))]
    fn new(
        py: Python<'_>,
        module: &Bound<'_, PyAny>,
        settings: &str,
        worker_command: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let settings = Settings::from_json(settings).map_err(|e| settings_error(py, e))?;
        let mut builder = Pool::builder();
        builder = match module.cast::<PyBytes>() {
            Ok(bytes) => builder.module_bytes(bytes.as_bytes().to_vec()),
            Err(_) => builder.module_file(module.extract::<PathBuf>()?),
        };
        if let Some(command) = worker_command {
            let Some((program, args)) = command.split_first() else {
                return Err(PyValueError::new_err("worker_command must name a program"));
            };
            builder = builder.processes(ProcessConfig::new().executable(program).args(args));
        }
        let builder = builder.settings(&settings);
        let pool = py.detach(|| builder.build()).map_err(|e| pool_error(py, e))?;
        Ok(NativePool { pool: RwLock::new(Some(Arc::new(pool))) })
    }

    /// The module's tasks: a list of dicts with `name`, `params` (a list
    /// of `(name, type)`), `result`, `doc` and `json`.
    fn tasks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let pool = self.pool()?;
        let list = PyList::empty(py);
        for info in pool.tasks() {
            let task = PyDict::new(py);
            task.set_item("name", &info.name)?;
            let params: Vec<(&str, &str)> = info.params.iter().map(|p| (p.name.as_str(), p.ty.as_str())).collect();
            task.set_item("params", params)?;
            let arity = info.arity();
            task.set_item("required", arity.required)?;
            task.set_item("most", (arity.most != wasmpool::Arity::UNBOUNDED).then_some(arity.most))?;
            task.set_item("result", &info.result)?;
            task.set_item("doc", &info.doc)?;
            task.set_item("json", info.json)?;
            list.append(task)?;
        }
        Ok(list)
    }

    /// How many workers the pool has.
    fn workers(&self) -> PyResult<usize> {
        Ok(self.pool()?.workers())
    }

    /// The pool's seed (the one given, or the one drawn).
    fn seed(&self) -> PyResult<u64> {
        Ok(self.pool()?.seed())
    }

    /// `"threads"` or `"processes"`.
    fn worker_kind(&self) -> PyResult<&'static str> {
        Ok(match self.pool()?.worker_kind() {
            WorkerKind::Processes => "processes",
            _ => "threads",
        })
    }

    /// Process mode: each worker's process id (`None` while it restarts).
    fn worker_pids(&self) -> PyResult<Vec<Option<u32>>> {
        Ok(self.pool()?.worker_pids())
    }

    /// What each worker has done: a list of dicts with `tasks`, `busy`
    /// (seconds) and `retries`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let stats = self.pool()?.stats();
        let list = PyList::empty(py);
        for worker in stats.workers {
            let entry = PyDict::new(py);
            entry.set_item("tasks", worker.tasks)?;
            entry.set_item("busy", worker.busy.as_secs_f64())?;
            entry.set_item("retries", worker.retries)?;
            list.append(entry)?;
        }
        Ok(list)
    }

    /// Starts a map of `task` over `items` (an iterable of argument
    /// values, each encoded for a task of `arity`), in input order or
    /// (`ordered=False`) in completion order. `total` is the inputs'
    /// length, if known; `messages` and `task_progress` are the callbacks
    /// of the tasks' messages and progress reports.
    #[pyo3(signature = (
        task, items, *, arity, total=None, ordered=true, chunk_size=None, deadline=None, fuel=None, seed=None,
        with_index=false, messages=None, task_progress=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        task: String,
        items: &Bound<'_, PyAny>,
        arity: (usize, Option<usize>),
        total: Option<usize>,
        ordered: bool,
        chunk_size: Option<usize>,
        deadline: Option<f64>,
        fuel: Option<u64>,
        seed: Option<u64>,
        with_index: bool,
        messages: Option<Py<PyAny>>,
        task_progress: Option<Py<PyAny>>,
    ) -> PyResult<Stream> {
        let pool = self.pool()?;
        let deadline = seconds("deadline", deadline)?;
        let items = PyIterator::from_object(items)?.unbind();
        let arity = Arity { required: arity.0, most: arity.1 };
        let spec = StreamSpec {
            task,
            arity,
            ordered,
            chunk_size,
            deadline,
            fuel,
            seed,
            total,
            with_index,
            messages,
            task_progress,
        };
        Stream::start(pool, spec, items).map_err(|e| pool_error(py, e))
    }

    /// An exchange over this pool holding up to `capacity` events not yet
    /// taken (`wasmpool.Pool.exchange`).
    #[pyo3(signature = (capacity=64))]
    fn exchange(&self, capacity: usize) -> PyResult<NativeExchange> {
        if capacity == 0 {
            return Err(PyValueError::new_err("an exchange holds at least one event (capacity >= 1)"));
        }
        Ok(NativeExchange::new(self.pool()?, capacity))
    }

    /// Closes the pool: no new calls. Its workers stop (worker processes
    /// are killed) now, or once the last map still running on it is gone.
    fn close(&self, py: Python<'_>) {
        let pool = self.pool.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        py.detach(move || drop(pool));
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_none()
    }
}
