//! `wasmpool`: run a task module's tasks over JSON lines (`run`), list its
//! tasks (`list`), start a new task crate (`new`), build a Python module
//! of tasks into a task component (`build`), or show and clear the cache
//! (`cache`). See `docs/cli.md`; the command itself is
//! [`wasmpool_cli::run_command`].

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(wasmpool_cli::run_command(std::env::args_os(), wasmpool_cli::WorkerProgram::ThisProgram))
}
