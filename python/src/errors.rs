//! The library's errors as Python exceptions. The classes are defined in
//! Python (`wasmpool/errors.py`, where a reader finds them); this module
//! picks the class for each error and fills in its attributes. Every
//! message is the library's, already escaped for a terminal.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use wasmpool::{Capability, Error, FailureKind, LimitExceeded, SettingsError, TaskError, TaskFailure};

/// The class of `wasmpool.errors` named `name`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py.import("wasmpool.errors")?.getattr(name)?.cast_into::<PyType>()?)
}

/// An instance of `wasmpool.errors.<name>(message, **attributes)`.
fn exception<'py>(
    py: Python<'py>,
    name: &str,
    message: String,
    attributes: &[(&str, Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    for (key, value) in attributes {
        kwargs.set_item(key, value)?;
    }
    class(py, name)?.call((message,), Some(&kwargs))
}

/// The exception `built` made, or the failure to make it: what to raise
/// either way.
fn raised(built: PyResult<Bound<'_, PyAny>>) -> PyErr {
    built.map_or_else(|failed| failed, PyErr::from_value)
}

/// A pool-level error as the exception to raise.
pub(crate) fn pool_error(py: Python<'_>, error: Error) -> PyErr {
    raised(pool_exception(py, error))
}

fn pool_exception(py: Python<'_>, error: Error) -> PyResult<Bound<'_, PyAny>> {
    let message = error.to_string();
    match error {
        Error::Task(task) => task_exception(py, &task),
        Error::ModuleFile { path, .. } => {
            let path = path.display().to_string().into_pyobject(py)?.into_any();
            exception(py, "ModuleLoadError", message, &[("path", path)])
        }
        Error::InvalidModule { .. } => exception(py, "ModuleLoadError", message, &[]),
        Error::Config(_) => exception(py, "ConfigError", message, &[]),
        Error::Settings(invalid) => settings_exception(py, invalid),
        Error::NoSuchTask { task, available } => {
            let task = task.into_pyobject(py)?.into_any();
            let available = available.into_pyobject(py)?.into_any();
            exception(py, "NoSuchTask", message, &[("task", task), ("available", available)])
        }
        Error::NoJsonEntry { task } => {
            exception(py, "NoJsonEntry", message, &[("task", task.into_pyobject(py)?.into_any())])
        }
        _ => exception(py, "PoolError", message, &[]),
    }
}

/// A setting of `wasmpool.Pool` that cannot be read or cannot work:
/// `TypeError` for a value of the wrong type, else
/// `wasmpool.errors.ConfigError`; either way with the setting's name as
/// `.setting`.
pub(crate) fn settings_error(py: Python<'_>, invalid: SettingsError) -> PyErr {
    raised(settings_exception(py, invalid))
}

fn settings_exception(py: Python<'_>, invalid: SettingsError) -> PyResult<Bound<'_, PyAny>> {
    let message = invalid.to_string();
    if invalid.reason.starts_with("invalid type") {
        let error = PyTypeError::new_err(message).into_value(py).into_bound(py).into_any();
        error.setattr("setting", &invalid.setting)?;
        return Ok(error);
    }
    let setting = invalid.setting.into_pyobject(py)?.into_any();
    exception(py, "ConfigError", message, &[("setting", setting)])
}

/// `wasmpool.errors.PoolClosed`: a call on a closed pool.
pub(crate) fn closed_error(py: Python<'_>) -> PyErr {
    raised(exception(py, "PoolClosed", "the pool is closed".into(), &[]))
}

/// Builds the exception for one failed task; `Err` only if building it
/// failed (then that failure is what the caller raises).
pub(crate) fn task_exception<'py>(py: Python<'py>, error: &TaskError) -> Result<Bound<'py, PyAny>, PyErr> {
    let kind = error.failure.kind();
    let name = match kind {
        FailureKind::InvalidInput => "InvalidInput",
        FailureKind::BadArguments => "BadArguments",
        FailureKind::BadResult => "BadResult",
        FailureKind::Panic => "TaskPanicked",
        FailureKind::Trap => "TaskTrapped",
        FailureKind::Failed => "TaskFailed",
        FailureKind::Limit => "LimitExceeded",
        FailureKind::WorkerCrashed => "WorkerCrashed",
        FailureKind::Module => "ModuleFailure",
        FailureKind::Cancelled => "TaskCancelled",
        FailureKind::RankLost => "RankLost",
        FailureKind::NotGranted => "NotGranted",
        _ => "TaskError",
    };
    let mut attributes = vec![
        ("task", error.task.as_str().into_pyobject(py)?.into_any()),
        ("index", error.index.into_pyobject(py)?.into_any()),
        ("kind", kind.as_str().into_pyobject(py)?.into_any()),
        ("reason", error.failure.to_string().into_pyobject(py)?.into_any()),
    ];
    match &error.failure {
        TaskFailure::Trap { frames, .. } => attributes.push(("frames", frames.clone().into_pyobject(py)?.into_any())),
        TaskFailure::Panic { location, message } => {
            attributes.push(("location", location.as_str().into_pyobject(py)?.into_any()));
            let raised = python_exception_type(location, message).unwrap_or_default();
            attributes.push(("exception", raised.into_pyobject(py)?.into_any()));
        }
        TaskFailure::Limit(limit) => attributes.push(("limit", limit_name(limit).into_pyobject(py)?.into_any())),
        TaskFailure::NotGranted { capability, failure } => {
            attributes.push(("capability", capability_name(*capability).into_pyobject(py)?.into_any()));
            let message = not_granted(&error.task, error.index, *capability, failure);
            return exception(py, name, message, &attributes);
        }
        _ => {}
    }
    exception(py, name, error.to_string(), &attributes)
}

/// The type of the exception a task written in Python raised
/// (`ZeroDivisionError`, `tasks.MyError`): its runner places it where the
/// task raised it (`file.py:LINE`) and starts the message with
/// `Type: text` (`traceback.format_exception_only`). `None` for a panic
/// of a task written in Rust.
fn python_exception_type(location: &str, message: &str) -> Option<String> {
    let (file, line) = location.rsplit_once(':')?;
    if !file.ends_with(".py") || line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first = message.lines().next()?;
    let name = first.split_once(':').map_or(first, |(name, _)| name);
    let is_name = |part: &str| {
        part.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    (!name.is_empty() && name.split('.').all(is_name)).then(|| name.to_owned())
}

/// The `Pool` keyword argument that grants `capability`.
fn capability_name(capability: Capability) -> &'static str {
    match capability {
        Capability::WallClock => "allow_wall_clock",
        _ => "allow_monotonic_clock",
    }
}

/// A refused capability in a Python user's words: the Python call first,
/// and the `Pool` keyword that grants it.
fn not_granted(task: &str, index: usize, capability: Capability, then: &TaskFailure) -> String {
    format!(
        "task `{}` (input #{index}): it used {} ({} in Python, `{}` in Rust), which this pool does not grant; \
         grant it with Pool(..., {}=True).{}",
        wasmpool::text::escape_line(task),
        capability.what(),
        capability.python_uses(),
        capability.example(),
        capability_name(capability),
        wasmpool::then_sentence(then),
    )
}

/// The limit's short name, as the pool's keyword arguments call it.
fn limit_name(limit: &LimitExceeded) -> &'static str {
    match limit {
        LimitExceeded::Deadline { .. } => "deadline",
        LimitExceeded::Memory { .. } => "max_memory",
        LimitExceeded::Table { .. } => "max_table_elements",
        LimitExceeded::Fuel { .. } => "fuel",
        LimitExceeded::Stack { .. } | LimitExceeded::LinearStack => "max_stack",
        LimitExceeded::Output { .. } => "max_output",
        LimitExceeded::Handles { .. } => "handles",
        _ => "compile_limits",
    }
}
