//! The settings of worker processes, apart from the pool's other settings
//! (as wasmtime keeps its pooling allocator's in `PoolingAllocationConfig`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Default number of times a task is run again after its worker process died.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// How worker processes are started and replaced; given to
/// [`PoolBuilder::processes`](crate::PoolBuilder::processes). The defaults
/// suit a program built with cargo next to `wasmpool-worker`.
///
/// ```no_run
/// use wasmpool::{Pool, ProcessConfig};
///
/// # fn main() -> wasmpool::Result<()> {
/// let pool = Pool::builder()
///     .module_file("guest_tasks.wasm")
///     .processes(ProcessConfig::new().executable("/opt/wasmpool/wasmpool-worker").max_retries(1))
///     .build()?;
/// # let _ = pool;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ProcessConfig {
    executable: Option<PathBuf>,
    args: Vec<OsString>,
    max_retries: u32,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig { executable: None, args: Vec::new(), max_retries: DEFAULT_MAX_RETRIES }
    }
}

impl ProcessConfig {
    /// The defaults: the worker executable looked for, no arguments,
    /// [`DEFAULT_MAX_RETRIES`] retries.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `wasmpool-worker` executable to start, instead of looking for
    /// it: by default `$WASMPOOL_WORKER`, else next to the running program
    /// or in its parent folder (cargo's `deps/` and `examples/`), else on
    /// `PATH`.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// The arguments the worker executable is started with (none by
    /// default), for a program that serves as its own worker executable,
    /// as the `wasmpool` command does with `wasmpool worker`. Such a
    /// program calls [`worker_main`](crate::worker_main) when it sees
    /// them, before writing anything to stdout.
    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// How many times a task is run again, on a new process, after its
    /// worker process died (default [`DEFAULT_MAX_RETRIES`]).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    pub(crate) fn explicit_executable(&self) -> Option<&Path> {
        self.executable.as_deref()
    }

    pub(crate) fn worker_args(&self) -> &[OsString] {
        &self.args
    }

    pub(crate) fn retries(&self) -> u32 {
        self.max_retries
    }
}
