//! `wasmpool._native`: the extension module under the `wasmpool` Python
//! package. It wraps the Rust library's [`wasmpool::Pool`] and its JSON
//! entry points, and turns Python values into JSON and back (per input,
//! without Python-level code); the pure-Python layer
//! (`python/wasmpool/`) gives the API its Python shape.
//!
//! - `pool`: the pool and its calls;
//! - `exchange`: many started tasks and their events (`wasmpool.Exchange`);
//! - `stream`: a running map (`wasmpool.MapIterator`), waited on in
//!   slices so Ctrl-C is seen;
//! - `inputs`: a Python iterator of argument values as the map's inputs;
//! - `values`: Python values as JSON, and JSON results as Python values;
//! - `errors`: the library's errors as the exceptions of `wasmpool.errors`.
#![deny(missing_docs)]

mod errors;
mod exchange;
mod inputs;
mod pool;
mod stream;
mod values;

use pyo3::prelude::*;

/// Serves a pool's tasks over stdin and stdout: the extension serving as
/// its own worker process (`python -c "import wasmpool._native as n;
/// n.worker_main()"`), so a pool of worker processes needs nothing but
/// this package. Never returns: the process exits with the worker's status.
#[pyfunction]
fn worker_main(py: Python<'_>) -> PyResult<()> {
    let code = py.detach(wasmpool::worker_main);
    // `ExitCode` keeps its number to itself: find it by comparison.
    let status = (0..=u8::MAX).find(|&n| std::process::ExitCode::from(n) == code).unwrap_or(1);
    std::process::exit(i32::from(status))
}

/// The `wasmpool` command (`wasmpool._cli`, the package's console
/// script): runs the command line `argv` and returns its exit status.
/// `run --processes` starts `worker` (a program and its arguments: this
/// interpreter running [`worker_main`]) as its worker processes, or, if
/// it is a str, fails with it as the reason none can be started.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>, worker: WorkerArg) -> u8 {
    let worker = match worker {
        WorkerArg::Command(command) => {
            let mut command = command.into_iter();
            match command.next() {
                Some(program) => {
                    wasmpool_cli::WorkerProgram::Command { program: program.into(), args: command.collect() }
                }
                None => wasmpool_cli::WorkerProgram::Unavailable("no worker command was given".into()),
            }
        }
        WorkerArg::Unavailable(why) => wasmpool_cli::WorkerProgram::Unavailable(why),
    };
    py.detach(|| wasmpool_cli::run_command(argv, worker))
}

/// `cli_main`'s `worker`: a command, or why there is none.
#[derive(FromPyObject)]
enum WorkerArg {
    Unavailable(String),
    Command(Vec<std::ffi::OsString>),
}

/// `value` as compact JSON text, encoded as a map's arguments are
/// (`values::encode`): the init task's arguments.
#[pyfunction]
fn dumps(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let mut out = Vec::new();
    values::encode(value, &mut out, 0)?;
    // The encoder writes UTF-8 only.
    String::from_utf8(out).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<pool::NativePool>()?;
    module.add_class::<stream::Stream>()?;
    module.add_class::<exchange::NativeExchange>()?;
    module.add_function(wrap_pyfunction!(worker_main, module)?)?;
    module.add_function(wrap_pyfunction!(dumps, module)?)?;
    module.add_function(wrap_pyfunction!(cli_main, module)?)?;
    // The WIT world of task components, for building tasks written in
    // Python (`wasmpool._build`): the text the host's bindings come from.
    // Every setting of `wasmpool.Pool`, and their defaults as JSON: the
    // library's, which the command shares (python/tests/test_settings.py
    // compares them with `Pool`'s signature).
    module.add("SETTINGS", wasmpool::SETTING_NAMES.to_vec())?;
    let defaults = serde_json::to_string(&wasmpool::Settings::default())
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    module.add("DEFAULT_SETTINGS", defaults)?;
    module.add("TASK_WORLD_WIT", include_str!("../../wit/wasmpool-task.wit"))?;
    Ok(())
}
