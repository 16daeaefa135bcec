//! Configuring and starting a pool.

use super::Backend;
use super::Pool;
use crate::cache;
use crate::decode::encode_args;
use crate::engine::{Allocator, AllocatorKind, EngineSettings, create_engine};
use crate::error::{Error, ModuleError, Result, TaskError};
use crate::executor::{InitCall, InstanceMode};
use crate::guest_call::{InstanceLimits, Instantiator};
use crate::module::{TaskModule, read_module_file};
use crate::process::locate::find_worker_executable;
use crate::process::supervisor::Spawner;
use crate::scheduler::chunking::ChunkSize;
use crate::transport::messages::{Hello, PROTOCOL_VERSION};
use crate::typecheck;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Default cap on one instance's linear memory: 256 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
/// Default cap on one instance's table, in elements.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 100_000;

/// Where the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerKind {
    /// Threads of the calling process (the default).
    #[default]
    Threads,
    /// One `wasmpool-worker` process per worker: a crashed or killed worker
    /// is replaced and its task retried; see [`crate::process`].
    Processes,
}

/// Default number of times a task is run again after its worker process died.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// Where precompiled modules are kept.
enum CacheSetting {
    Default,
    Dir(PathBuf),
    Disabled,
}

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
    kind: WorkerKind,
    worker_executable: Option<PathBuf>,
    max_retries: u32,
    cache: CacheSetting,
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
            kind: WorkerKind::Threads,
            worker_executable: None,
            max_retries: DEFAULT_MAX_RETRIES,
            cache: CacheSetting::Default,
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

    /// Threads (the default) or worker processes. Both give the same results.
    pub fn worker_kind(mut self, kind: WorkerKind) -> Self {
        self.kind = kind;
        self
    }

    /// Process mode: the `wasmpool-worker` executable to start, instead of
    /// looking for it (see [`find_worker_executable`](crate::process::locate::find_worker_executable)).
    pub fn worker_executable(mut self, path: impl Into<PathBuf>) -> Self {
        self.worker_executable = Some(path.into());
        self
    }

    /// Process mode: how many times a task is run again, on a new process,
    /// after its worker process died (default [`DEFAULT_MAX_RETRIES`]).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Folder of the precompiled-module cache (default: `wasmpool` in the
    /// user's cache folder). It should be writable by its user only.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CacheSetting::Dir(dir.into());
        self
    }

    /// Compile the module afresh, without reading or writing the cache
    /// (process mode still hands workers the compiled code, in a temporary
    /// folder removed with the pool).
    pub fn disable_cache(mut self) -> Self {
        self.cache = CacheSetting::Disabled;
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
        let cache_dir = match &self.cache {
            CacheSetting::Default => Some(cache::default_dir()),
            CacheSetting::Dir(dir) => Some(dir.clone()),
            CacheSetting::Disabled => None,
        };
        let (module, artifact) = TaskModule::compile_cached(&engine, &bytes, origin.clone(), cache_dir.as_deref())?;
        let limits = InstanceLimits { max_memory: self.max_memory, max_table_elements: self.max_table_elements };
        let instantiator = Instantiator::new(&engine, &module.module, limits)
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
        tracing::debug!(workers, ?allocator, kind = ?self.kind, module = %origin, tasks = module.tasks.len(), "starting pool");
        let backend = match self.kind {
            WorkerKind::Threads => Backend::Threads { instantiator },
            WorkerKind::Processes => {
                let executable = find_worker_executable(self.worker_executable.as_deref())
                    .map_err(|searched| Error::WorkerNotFound { searched })?;
                // Workers need the compiled code on disk: the cache entry, or
                // a private copy when the cache is off or not writable.
                let (artifact, scratch) = match artifact {
                    Some(artifact) => (artifact, None),
                    None => {
                        let dir = tempfile::tempdir()
                            .map_err(|e| Error::Engine(format!("cannot create a temporary folder: {e}")))?;
                        // The module is compiled already: store that, do not compile again.
                        let artifact =
                            cache::store_module(&engine, &module.module, &bytes, dir.path()).map_err(|e| {
                                Error::Engine(format!(
                                    "cannot store the compiled module in {}: {e}",
                                    dir.path().display()
                                ))
                            })?;
                        (artifact, Some(dir))
                    }
                };
                let child_engine = EngineSettings {
                    allocator: match allocator {
                        AllocatorKind::Pooling => Allocator::Pooling,
                        AllocatorKind::OnDemand => Allocator::OnDemand,
                    },
                    instance_slots: 4,
                    ..settings
                };
                let hello = Hello {
                    protocol: PROTOCOL_VERSION,
                    wasmpool_version: env!("CARGO_PKG_VERSION").to_owned(),
                    worker: 0,
                    artifact: artifact.path.to_string_lossy().into_owned(),
                    checksum: artifact.checksum,
                    engine: child_engine,
                    mode: self.mode,
                    init: init.as_deref().cloned(),
                };
                Backend::Processes {
                    spawner: Arc::new(Spawner { executable, hello }),
                    max_retries: self.max_retries,
                    scratch,
                }
            }
        };
        Pool::start(module, backend, allocator, workers, self.mode, init, self.chunk_size)
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
