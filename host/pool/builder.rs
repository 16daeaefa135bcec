//! Configuring and starting a pool.

use super::Pool;
use crate::decode::encode_args;
use crate::engine::{Allocator, EngineSettings, create_engine};
use crate::error::{Error, ModuleError, Result, TaskError};
use crate::guest_call::{InstanceLimits, Instantiator};
use crate::module::{TaskModule, read_module_file};
use crate::scheduler::chunking::ChunkSize;
use crate::typecheck;
use crate::worker::{InitCall, InstanceMode};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Default cap on one instance's linear memory: 256 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
/// Default cap on one instance's table, in elements.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 100_000;

/// An init task as given to the builder, checked at `build`.
struct PendingInit {
    task: String,
    args: Result<Vec<u8>, String>,
    host_type: &'static str,
}

enum ModuleSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// Settings for a [`Pool`]; start from [`Pool::builder`].
///
/// Only the module is required. Everything is checked by
/// [`build`](PoolBuilder::build), which compiles the module once, checks it
/// against the ABI and starts the workers.
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    module: Option<ModuleSource>,
    workers: Option<usize>,
    allocator: Allocator,
    mode: InstanceMode,
    init: Option<PendingInit>,
    chunk_size: ChunkSize,
    max_memory: usize,
    max_table_elements: usize,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            module: None,
            workers: None,
            allocator: Allocator::Auto,
            mode: InstanceMode::FreshPerTask,
            init: None,
            chunk_size: ChunkSize::Auto,
            max_memory: DEFAULT_MAX_MEMORY,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
        }
    }
}

impl PoolBuilder {
    /// Loads the task module from a `.wasm` file.
    pub fn module_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.module = Some(ModuleSource::File(path.into()));
        self
    }

    /// Uses these bytes as the task module.
    pub fn module_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.module = Some(ModuleSource::Bytes(bytes.into()));
        self
    }

    /// Number of worker threads (default: the machine's available parallelism).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How instances are allocated (default: [`Allocator::Auto`]).
    pub fn allocator(mut self, allocator: Allocator) -> Self {
        self.allocator = allocator;
        self
    }

    /// Which instance each task runs in (default: a fresh one per task).
    pub fn instance_mode(mut self, mode: InstanceMode) -> Self {
        self.mode = mode;
        self
    }

    /// A task to run on every new instance before it serves tasks: once per
    /// worker in [`InstanceMode::PerWorker`], before every task in
    /// [`InstanceMode::FreshPerTask`]. It also runs once while building, so a
    /// failing init is reported by `build`.
    pub fn init_task<A: Serialize>(mut self, task: &str, args: A) -> Self {
        let args = encode_args(&args).map_err(|e| e.to_string());
        self.init = Some(PendingInit { task: task.to_owned(), args, host_type: std::any::type_name::<A>() });
        self
    }

    /// Default chunking of maps (default: [`ChunkSize::Auto`]); a `usize`
    /// works too, `0` meaning automatic.
    pub fn chunk_size(mut self, chunk_size: impl Into<ChunkSize>) -> Self {
        self.chunk_size = chunk_size.into();
        self
    }

    /// Largest linear memory one instance may grow to, in bytes (default
    /// [`DEFAULT_MAX_MEMORY`]). A guest growing past it sees `memory.grow`
    /// fail, which Rust guests report as an allocation failure.
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Largest table one instance may have, in elements.
    pub fn max_table_elements(mut self, elements: usize) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// Compiles and checks the module, then starts the workers.
    pub fn build(self) -> Result<Pool> {
        let workers = match self.workers {
            Some(0) => return Err(Error::Config("a pool needs at least one worker".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_memory < 64 * 1024 {
            return Err(Error::Config(format!(
                "max_memory of {} bytes is below one Wasm page (65536 bytes)",
                self.max_memory
            )));
        }
        let (bytes, origin) = match self.module {
            None => return Err(Error::Config("no task module given: call `module_file` or `module_bytes`".into())),
            Some(ModuleSource::File(path)) => (read_module_file(&path)?, path.display().to_string()),
            Some(ModuleSource::Bytes(bytes)) => (bytes, "<bytes>".to_owned()),
        };

        let settings = EngineSettings {
            allocator: self.allocator,
            instance_slots: u32::try_from(workers.saturating_mul(2).saturating_add(2)).unwrap_or(u32::MAX),
            max_memory: self.max_memory,
            max_table_elements: self.max_table_elements,
        };
        let (engine, allocator) = create_engine(&settings)?;
        let module = TaskModule::compile(&engine, &bytes, origin.clone())?;
        let limits = InstanceLimits { max_memory: self.max_memory, max_table_elements: self.max_table_elements };
        let instantiator = Instantiator::new(&engine, &module, limits)
            .map_err(|e| Error::InvalidModule { origin: origin.clone(), cause: ModuleError::Instantiation(e) })?;

        let init = match self.init {
            None => None,
            Some(PendingInit { task, args: encoded, host_type }) => {
                let info = module.task(&task)?;
                let failure = |f| Error::Task(TaskError { task: task.clone(), index: 0, failure: f });
                typecheck::check_args(info, host_type)
                    .map_err(|e| failure(crate::error::TaskFailure::ArgumentTypes(e)))?;
                let args = encoded.map_err(|e| failure(crate::error::TaskFailure::EncodeArguments(e)))?;
                let export = wasmpool_abi::task_export_name(&task);
                Some(Arc::new(InitCall { task, export, args }))
            }
        };

        probe(&instantiator, &origin, init.as_deref())?;
        tracing::debug!(workers, ?allocator, module = %origin, tasks = module.tasks.len(), "starting pool");
        Pool::start(module, instantiator, allocator, workers, self.mode, init, self.chunk_size)
    }
}

/// Instantiates the module once: it must instantiate, report our ABI
/// version, and survive its init task.
fn probe(instantiator: &Instantiator, origin: &str, init: Option<&InitCall>) -> Result<()> {
    let invalid = |cause| Error::InvalidModule { origin: origin.to_owned(), cause };
    let mut instance = instantiator.instantiate().map_err(|f| invalid(ModuleError::Instantiation(f.to_string())))?;
    let version = instance.abi_version().map_err(|f| invalid(ModuleError::Instantiation(f.to_string())))?;
    if version != wasmpool_abi::ABI_VERSION {
        return Err(invalid(ModuleError::AbiVersion { found: version, expected: wasmpool_abi::ABI_VERSION }));
    }
    if let Some(init) = init {
        instance
            .call(&init.export, &init.args)
            .map_err(|failure| Error::Task(TaskError { task: init.task.clone(), index: 0, failure }))?;
    }
    Ok(())
}
