//! Configuring and starting a pool.

use super::Backend;
use super::Pool;
use super::StartPlan;
use super::settings::{DEFAULT_LOAD_DEADLINE, Settings};
use crate::decode::encode_args;
use crate::error::{Error, LoadStep, ModuleError, Result, SettingsError, TaskError, TaskFailure};
use crate::pool::json::{args_from_array, check_input};
use crate::process::config::ProcessConfig;
use crate::process::locate::{find_worker_executable, worker_file_name};
use crate::process::supervisor::Spawner;
use crate::process::watchdog::Watchdog;
use crate::runtime::cache::{self, PreparedError};
use crate::runtime::code::{CodeKind, CompiledCode};
use crate::runtime::component;
use crate::runtime::engine::{
    Allocator, AllocatorKind, EngineSettings, SLOTS_PER_WORKER_ENGINE, create_compiling_engine, create_engine,
    engines_for_workers,
};
use crate::runtime::init::InitCall;
use crate::runtime::instance::{InstanceConfig, Instantiator};
use crate::runtime::module::{ModuleRules, TaskCatalog, TaskInfo, TaskModule, prepare_code, read_module_file};
use crate::runtime::typecheck;
use crate::sandbox::interrupt::{RunLimits, Ticker};
use crate::sandbox::limits::{CompileLimits, Limits};
use crate::sandbox::output::OutputSink;
use crate::sandbox::wasi::WasiConfig;
use crate::scheduler::chunking::ChunkSize;
use crate::spin::DEFAULT_IDLE_SPIN;
use crate::transport::messages::{Hello, PROTOCOL_VERSION, max_reply_len};
use crate::worker::executor::InstanceMode;
use crate::worker::load::LoadedCode;
use crate::worker::probe::{interruptible_copy, probe, probe_error};
use crate::worker::worker_stack_size;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerKind {
    /// Threads of the calling process (the default).
    #[default]
    Threads,
    /// One `wasmpool-worker` process per worker: a crashed or killed worker
    /// is replaced and its task retried (`docs/processes.md`).
    Processes,
}

/// Where precompiled modules are kept.
enum CacheSetting {
    Default,
    Dir(PathBuf),
    Disabled,
}

/// The name of the NaN rewrite of a component's core modules, for the
/// cache: entries made by another version of the rewrite, or of wasmpool,
/// are not taken for this one's.
fn nan_preparation() -> String {
    format!(
        "canonical NaNs v{}, wasmpool {}",
        crate::runtime::canonical_nans::REWRITE_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// An init task as given to the builder, checked at `build`.
#[derive(Debug)]
struct PendingInit {
    task: String,
    args: InitArgs,
}

/// An init task's arguments, as given to the builder.
#[derive(Debug)]
enum InitArgs {
    /// From [`PoolBuilder::init_task`]: in both encodings, since which the
    /// call takes (postcard for a core module's task, JSON for a
    /// component's) is known only once the code is read.
    Typed { postcard: Result<Vec<u8>, String>, json: Result<String, String>, host_type: &'static str },
    /// From [`PoolBuilder::init_task_json`]: a JSON array of the arguments.
    JsonArray(String),
}

enum ModuleSource {
    File(PathBuf),
    Bytes(Vec<u8>),
    /// Cluster mode: the bytes rank 0 read from `origin`.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    Received {
        bytes: Vec<u8>,
        origin: String,
    },
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
    limits: Limits,
    compile_limits: CompileLimits,
    interruptible: Option<bool>,
    canonicalize_nans: bool,
    reset_in_place: bool,
    wasi: Option<WasiConfig>,
    output: OutputSink,
    kind: WorkerKind,
    processes: ProcessConfig,
    cache: CacheSetting,
    spin: Duration,
    seed: Option<u64>,
    load_deadline: Duration,
    /// Why the [`Settings`] given last cannot work, reported by `build`.
    invalid_settings: Option<SettingsError>,
    #[cfg(feature = "mpi")]
    cluster: Option<crate::cluster::Cluster>,
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
            limits: Limits::default(),
            compile_limits: CompileLimits::default(),
            interruptible: None,
            canonicalize_nans: true,
            reset_in_place: true,
            wasi: None,
            output: OutputSink::default(),
            kind: WorkerKind::Threads,
            processes: ProcessConfig::default(),
            cache: CacheSetting::Default,
            spin: DEFAULT_IDLE_SPIN,
            seed: None,
            load_deadline: DEFAULT_LOAD_DEADLINE,
            invalid_settings: None,
            #[cfg(feature = "mpi")]
            cluster: None,
        }
    }
}

impl PoolBuilder {
    /// Takes every setting `settings` holds, the ones it leaves at their
    /// defaults included; a later call of a method it covers replaces that
    /// setting. Settings that cannot work ([`Settings::validate`]) make
    /// [`build`](Self::build) fail with [`Error::Settings`].
    /// `processes: true` runs the worker program of the [`ProcessConfig`]
    /// given to [`processes`](Self::processes) (the default one without):
    /// give that before this call, as `processes` replaces the whole
    /// configuration, its `max_retries` included.
    pub fn settings(mut self, settings: &Settings) -> Self {
        self.invalid_settings = None;
        let wasi = match settings.validate().and_then(|()| settings.wasi()) {
            Ok(wasi) => wasi,
            Err(invalid) => {
                self.invalid_settings = Some(invalid);
                return self;
            }
        };
        self.workers = settings.workers;
        self.kind = if settings.processes { WorkerKind::Processes } else { WorkerKind::Threads };
        self.processes = std::mem::take(&mut self.processes).max_retries(settings.max_retries);
        self.seed = settings.seed;
        self.chunk_size = settings.chunk_size.map_or(ChunkSize::Auto, ChunkSize::from);
        self.limits = settings.limits();
        self.load_deadline = settings.load_deadline;
        self.compile_limits.max_module_bytes = settings.max_module_size;
        self.interruptible = settings.interruptible;
        self.mode = if settings.fresh_state { InstanceMode::FreshPerTask } else { InstanceMode::PerWorker };
        self.canonicalize_nans = settings.canonicalize_nans;
        self.cache = match (&settings.cache_dir, settings.cache) {
            (_, false) => CacheSetting::Disabled,
            (Some(dir), true) => CacheSetting::Dir(dir.clone()),
            (None, true) => CacheSetting::Default,
        };
        self.init = settings
            .initializer
            .as_ref()
            .map(|task| PendingInit { task: task.clone(), args: InitArgs::JsonArray(settings.initargs.clone()) });
        self.wasi = wasi;
        self
    }

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

    /// A task to run on every new instance before it serves tasks. In
    /// [`InstanceMode::PerWorker`] it runs once per worker; in
    /// [`InstanceMode::FreshPerTask`] every task starts from the state it
    /// leaves, as if it ran before each task (it runs on each new instance,
    /// and an instance reset in place returns to that state). It also runs
    /// once while building, so a failing init is reported by `build`.
    /// Task components (tasks written in Python) get `args` as JSON.
    pub fn init_task<A: Serialize>(mut self, task: &str, args: A) -> Self {
        let postcard = encode_args(&args).map_err(|e| e.to_string());
        let json = serde_json::to_string(&args).map_err(|e| e.to_string());
        let args = InitArgs::Typed { postcard, json, host_type: std::any::type_name::<A>() };
        self.init = Some(PendingInit { task: task.to_owned(), args });
        self
    }

    /// [`init_task`](Self::init_task) with the arguments as JSON text: an
    /// array of them, one element per parameter of the task (`[]` for
    /// none), as `multiprocessing`'s `initargs`. The task is called
    /// through its JSON entry point (a Rust task needs one: the SDK's
    /// `json` feature, on by default). For callers that speak JSON, such
    /// as the Python package.
    pub fn init_task_json(mut self, task: &str, args: impl Into<String>) -> Self {
        self.init = Some(PendingInit { task: task.to_owned(), args: InitArgs::JsonArray(args.into()) });
        self
    }

    /// Default chunking of maps (default: [`ChunkSize::Auto`]); a `usize`
    /// works too, `0` meaning automatic.
    pub fn chunk_size(mut self, chunk_size: impl Into<ChunkSize>) -> Self {
        self.chunk_size = chunk_size.into();
        self
    }

    /// How long an idle worker, and a caller waiting for a result, keep
    /// checking before they sleep (default
    /// [`DEFAULT_IDLE_SPIN`](crate::DEFAULT_IDLE_SPIN),
    /// 50 µs). Spinning saves the 5 to 15 µs of waking a sleeping thread,
    /// which is most of the cost of a short task. Only one idle worker
    /// spins for lone calls, and a map's caller stops spinning while its
    /// results arrive further apart than the budget, so long tasks keep
    /// every core. `Duration::ZERO` never spins, for machines where an idle
    /// pool must not use any CPU.
    pub fn idle_spin(mut self, budget: Duration) -> Self {
        self.spin = budget;
        self
    }

    /// Largest linear memory one instance may grow to, in bytes (default
    /// [`DEFAULT_MAX_MEMORY`](crate::sandbox::limits::DEFAULT_MAX_MEMORY)).
    /// A guest growing past it sees `memory.grow` fail; one that then traps
    /// (as Rust guests do on allocation failure) fails with
    /// [`LimitExceeded::Memory`](crate::LimitExceeded::Memory).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.limits.max_memory = bytes;
        self
    }

    /// Largest table one instance may have, in elements (default
    /// [`DEFAULT_MAX_TABLE_ELEMENTS`](crate::sandbox::limits::DEFAULT_MAX_TABLE_ELEMENTS)).
    pub fn max_table_elements(mut self, elements: usize) -> Self {
        self.limits.max_table_elements = elements;
        self
    }

    /// Wall time each task may run, from its start (instantiation included);
    /// a task past it is stopped with
    /// [`LimitExceeded::Deadline`](crate::LimitExceeded::Deadline) and its
    /// worker serves the next task. Default: none. Thread workers then
    /// compile epoch checks into the module (about a third slower on tight
    /// loops); worker processes are killed and replaced instead, at no cost
    /// to the code. See `docs/sandbox.md`.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.limits.deadline = Some(deadline);
        self
    }

    /// Thread workers: compile the epoch checks that let running tasks be
    /// cancelled and given per-call deadlines, even without a pool deadline
    /// (default: only when [`deadline`](Self::deadline) is set). `false`
    /// with a deadline is refused. Worker processes need no checks.
    pub fn interruptible(mut self, interruptible: bool) -> Self {
        self.interruptible = Some(interruptible);
        self
    }

    /// Whether every NaN a float operation makes gets the same bits on every
    /// CPU (default `true`). Wasm leaves a new NaN's sign and payload to the
    /// hardware: `0.0 / 0.0` is a negative NaN on x86-64 and a positive one
    /// on aarch64, so a result holding a NaN, or a task that looks at a
    /// NaN's bits, would differ between machines. The module is rewritten
    /// at load so that a NaN is made canonical only where its bits can be
    /// observed (stored, reinterpreted, passed to a call or a global…), with
    /// the bits wasmtime's canonicalization after every float operation
    /// would give it; float loops that keep their floats in locals get no
    /// check at all (docs/benchmarks.md). A task component's core modules
    /// (CPython's, for tasks written in Python) are rewritten the same way,
    /// once: the cache keeps the compiled result. `false` skips the
    /// rewrite; every result that is not a NaN stays bit-identical across
    /// platforms either way.
    pub fn canonicalize_nans(mut self, canonicalize: bool) -> Self {
        self.canonicalize_nans = canonicalize;
        self
    }

    /// How [`InstanceMode::FreshPerTask`] gives every task a fresh state
    /// (default `true`): each worker keeps one instance and, between tasks,
    /// restores the memory pages the last task wrote and the module's
    /// globals, which costs a fraction of creating an instance. The module
    /// is rewritten at load so that its writes mark the pages they write
    /// (a few instructions per store); modules importing WASI are reset
    /// with Linux's `PAGEMAP_SCAN` instead. A task sees exactly the state a
    /// new instance has either way. Instances are still created afresh
    /// where a reset cannot give that state: a module whose code can change
    /// its tables or drop segments, an instance whose memory grew, a WASI
    /// module on a system without the scan (see docs/instance-modes.md).
    /// `false` creates a new instance for every task, with no marks.
    pub fn reset_in_place(mut self, reset: bool) -> Self {
        self.reset_in_place = reset;
        self
    }

    /// Meters fuel: each task may execute about `fuel` Wasm instructions
    /// before it is stopped with [`LimitExceeded::Fuel`](crate::LimitExceeded::Fuel).
    /// Deterministic, unlike a deadline: the same task stops at the same
    /// point on every machine, which suits grading. Default: unmetered
    /// (metering costs about a quarter of a tight loop's speed).
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.limits.fuel = Some(fuel);
        self
    }

    /// Largest Wasm stack, in bytes (default 512 KiB); deeper recursion
    /// fails with [`LimitExceeded::Stack`](crate::LimitExceeded::Stack).
    pub fn max_stack(mut self, bytes: usize) -> Self {
        self.limits.max_stack = bytes;
        self
    }

    /// Largest result, and largest stdout or stderr of a WASI task, in
    /// bytes (default 64 MiB). Larger ones are refused before the host
    /// copies them, with [`LimitExceeded::Output`](crate::LimitExceeded::Output).
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.limits.max_output = bytes;
        self
    }

    /// Largest message a task may send while running, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE`](crate::DEFAULT_MAX_MESSAGE), 1 MiB).
    /// A larger one stops the task with
    /// [`LimitExceeded::Output`](crate::LimitExceeded::Output). With an
    /// [`Exchange`](crate::Exchange)'s capacity it bounds the memory
    /// messages can take in the host.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.limits.max_message = bytes;
        self
    }

    /// Bounds on the module checked before compiling it (size, functions,
    /// locals); see [`CompileLimits`].
    pub fn compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_limits = limits;
        self
    }

    /// What a module built for `wasm32-wasip1` (importing WASI preview 1)
    /// is granted; see [`WasiConfig`]. Without this call such a module
    /// still runs, granted nothing: its printed output is captured, its
    /// random numbers are the task's seeded stream, and clocks, files,
    /// environment and sleeping are refused.
    pub fn wasi(mut self, config: WasiConfig) -> Self {
        self.wasi = Some(config);
        self
    }

    /// Where the output tasks print (`println!` in a `wasm32-wasip1` task)
    /// goes when the caller does not take it with `call_captured` or
    /// `map_captured`: by default the host's stderr, each line marked with
    /// the task and its input ([`OutputSink`]).
    pub fn output_sink(mut self, sink: OutputSink) -> Self {
        self.output = sink;
        self
    }

    /// Threads (the default) or worker processes. Both give the same results.
    pub fn worker_kind(mut self, kind: WorkerKind) -> Self {
        self.kind = kind;
        self
    }

    /// Worker processes, started and replaced as `config` says: the same
    /// as [`worker_kind`](Self::worker_kind)`(WorkerKind::Processes)` with
    /// settings other than [`ProcessConfig`]'s defaults.
    pub fn processes(mut self, config: ProcessConfig) -> Self {
        self.kind = WorkerKind::Processes;
        self.processes = config;
        self
    }

    /// Folder of the precompiled-module cache (default: `wasmpool` in the
    /// user's own cache folder; without one, no cache). Created private to
    /// the user if missing; a folder or entry that is not the user's own, or
    /// that others may write, is refused with a warning and the module is
    /// compiled without it, since a precompiled module is native code the
    /// host runs (see `docs/sandbox.md`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CacheSetting::Dir(dir.into());
        self
    }

    /// Compile the module afresh, without reading or writing the cache
    /// (worker processes get the compiled code from the host either way).
    pub fn disable_cache(mut self) -> Self {
        self.cache = CacheSetting::Disabled;
        self
    }

    /// The pool's seed, from which every task's own seed is derived (see
    /// [`task_seed`](crate::task_seed)): with the same seed, seeded tasks give the same
    /// results whatever the worker count, kind, chunking or order. By
    /// default a random one is drawn; [`Pool::seed`] reports it so a run
    /// can be repeated.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How long the guest code that runs while the module loads may take
    /// (default [`DEFAULT_LOAD_DEADLINE`], 5 s): its start function,
    /// `_initialize` (WASI), `wasmpool_abi_version` and the init task, run
    /// once by `build` (in each new process, with worker processes). Past
    /// it, `build` fails with
    /// [`ModuleError::LoadTimeout`](crate::ModuleError::LoadTimeout) naming
    /// what did not return; a task deadline shorter than this bounds
    /// loading too. This holds whatever the other settings: a thread pool
    /// without epoch checks probes such code in a copy of the module
    /// compiled with them (see `docs/sandbox.md`).
    pub fn load_deadline(mut self, deadline: Duration) -> Self {
        self.load_deadline = deadline;
        self
    }

    /// Compiles and checks the module as [`build`](Self::build) does (its
    /// header, compile limits, imports, exports and task list, through the
    /// module cache), without starting any worker, and returns its tasks.
    /// A core module's code does not run; a task component (tasks written
    /// in Python) lists its tasks by running its start (the module's
    /// top-level code) and task list once, in the sandbox, under the load
    /// deadline. For tools that only read a module, such as `wasmpool list`.
    pub fn inspect(mut self) -> Result<Vec<TaskInfo>> {
        let compiled = self.compile()?;
        let config = self.instance_config(&compiled);
        Ok(self.task_list(&compiled, &config)?.0.tasks)
    }

    /// Compiles and checks the module, then starts the workers. With a
    /// cluster (`cluster`, feature `mpi`), on rank 0 only: other ranks call
    /// `build_or_serve`.
    pub fn build(self) -> Result<Pool> {
        #[cfg(feature = "mpi")]
        if let Some(cluster) = &self.cluster {
            if !cluster.is_leader() {
                return Err(Error::Config(format!(
                    "rank {} of the cluster has no pool of its own: it serves rank 0 through \
                     `build_or_serve`",
                    cluster.rank()
                )));
            }
            return self.build_or_serve()?.ok_or_else(|| Error::Config("rank 0 built no pool".into()));
        }
        self.build_here()
    }

    /// Cluster mode: one pool over every rank of the MPI job `cluster`
    /// joined. On rank 0, [`build_or_serve`](Self::build_or_serve) returns
    /// the pool; on the others it serves rank 0. Every rank uses its own
    /// builder's settings, which must agree with rank 0's on everything
    /// that changes results (limits, instance mode, init task, WASI, NaN
    /// canonicalisation); the module's bytes come from rank 0 (the other
    /// ranks need no copy of the file). The number of workers is per rank;
    /// by default every CPU, less one on rank 0 of a job of several ranks
    /// (it reads, dispatches and writes). See [`crate::cluster`].
    #[cfg(feature = "mpi")]
    pub fn cluster(mut self, cluster: crate::cluster::Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Cluster mode: on rank 0, builds the pool that spans every rank
    /// (`Some`); on the others, serves rank 0 until it drops that pool and
    /// returns `None`. Without a cluster, the same as
    /// [`build`](Self::build). A rank whose module, engine or settings
    /// differ from rank 0's stops the job at set-up with
    /// [`ClusterError::Refused`](crate::cluster::ClusterError::Refused),
    /// naming the rank and its host.
    #[cfg(feature = "mpi")]
    pub fn build_or_serve(mut self) -> Result<Option<Pool>> {
        let Some(cluster) = self.cluster.take() else { return self.build_here().map(Some) };
        let agreement = self.agreement();
        // What each rank accepts from the others, by this pool's limits.
        let bounds = crate::cluster::policy::MessageBounds::new(&self.limits, &self.compile_limits, &agreement);
        if cluster.is_leader() {
            let seed = self.resolve_seed()?;
            self.seed = Some(seed);
            let (bytes, origin) = self.take_module()?;
            crate::cluster::lead(&cluster, &bytes, &origin, seed)?;
            self.module = Some(ModuleSource::Received { bytes, origin });
            if self.workers.is_none() && cluster.size() > 1 {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                self.workers = Some(cpus.saturating_sub(1).max(1));
            }
            let built = self.build_here();
            let own = match &built {
                Ok(pool) => Ok(pool.engine_hash),
                Err(error) => Err(format!("rank 0 could not build its pool: {error}")),
            };
            let ranks = crate::cluster::gather(&cluster, &agreement, &bounds, own);
            // Rank 0's own failure first: it is the reason the others were stopped.
            let mut pool = built?;
            let ranks = ranks?;
            if !ranks.is_empty() {
                let leader = crate::cluster::Leader::start(cluster, ranks, pool.jobs.clone(), bounds)
                    .map_err(|source| Error::Spawn { worker: pool.threads.len(), source })?;
                pool.leader = Some(leader);
            }
            Ok(Some(pool))
        } else {
            let received = crate::cluster::follow(&cluster, &bounds)?;
            self.module = Some(ModuleSource::Received { bytes: received.module, origin: received.origin });
            self.seed = Some(received.seed);
            let built = self.build_here();
            let joined = match &built {
                Ok(pool) => Ok(crate::cluster::wire::JoinedPool {
                    workers: u32::try_from(pool.workers()).unwrap_or(u32::MAX),
                    engine: pool.engine_hash,
                    settings: agreement.settings,
                    env: agreement.env,
                }),
                Err(error) => Err(error.to_string()),
            };
            crate::cluster::report(&cluster, &bounds, joined)?;
            let pool = built?;
            crate::cluster::serve(&cluster, &pool, &bounds)?;
            drop(pool);
            drop(cluster);
            Ok(None)
        }
    }

    /// What ranks of a cluster must agree on: the settings that change a
    /// task's result, as text they compare and may print (so without the
    /// values of granted environment variables, which may be secrets), and
    /// digests of those values.
    #[cfg(feature = "mpi")]
    fn agreement(&self) -> crate::cluster::policy::Agreement {
        let init = self.init.as_ref().map(|init| {
            let args = match &init.args {
                InitArgs::Typed { postcard, .. } => format!("{postcard:?}"),
                InitArgs::JsonArray(array) => array.clone(),
            };
            (&init.task, args)
        });
        let wasi = self.wasi.as_ref().map(WasiConfig::without_env_values);
        let settings = format!(
            "limits {:?}, mode {:?}, init {:?}, wasi {:?}, canonicalize_nans {}, compile limits {:?}",
            self.limits, self.mode, init, wasi, self.canonicalize_nans, self.compile_limits
        );
        let env = crate::cluster::wire::env_digests(self.wasi.as_ref().map_or(&[][..], WasiConfig::env_vars));
        crate::cluster::policy::Agreement { settings, env }
    }

    /// The plan to reset instances in place, if tasks get fresh instances,
    /// the builder allows it and the module can be reset.
    fn reset_plan(&self, module: &TaskModule) -> Option<crate::runtime::fresh_state::ResetPlan> {
        (self.mode == InstanceMode::FreshPerTask && self.reset_in_place).then(|| module.reset.clone().ok()).flatten()
    }

    /// [`build`](Self::build) on this machine alone: the same steps for
    /// both code kinds and both worker kinds (`worker::load`).
    fn build_here(mut self) -> Result<Pool> {
        let seed = self.resolve_seed()?;
        let compiled = self.compile()?;
        let config = self.instance_config(&compiled);
        // Components always have epoch checks: their load runs guest code.
        let sandbox = self.sandbox_info(compiled.epoch_checks || !compiled.threads);
        tracing::info!(seed, "pool seed: the same seed gives every task the same random numbers again");
        let (backend, catalog, allocator) = if compiled.threads {
            self.thread_backend(&compiled, config, seed)?
        } else {
            self.process_backend(&compiled, config, seed)?
        };
        tracing::debug!(workers = compiled.workers, kind = ?self.kind, code = compiled.unit.kind().noun(),
            module = %crate::text::escape_line(&compiled.origin), tasks = catalog.tasks.len(), "starting pool");
        let plan = self.start_plan(&compiled, allocator, sandbox, seed);
        let mut pool = Pool::start(catalog, backend, plan)?;
        pool.engine_hash = crate::runtime::engine::compatibility_hash(&compiled.engine);
        Ok(pool)
    }

    /// How the pool's instances are made: the part of it that depends on
    /// the code's kind is read off the compiled unit here.
    fn instance_config(&self, compiled: &Compiled) -> InstanceConfig {
        let (stack_pointer, reset, component_start) = match &compiled.unit {
            Unit::Module(module) => (module.stack_pointer, self.reset_plan(module), None),
            Unit::Component { start, .. } => (None, None, start.as_deref().map(str::to_owned)),
        };
        InstanceConfig {
            limits: self.limits.clone(),
            epoch_checks: compiled.epoch_checks,
            wasi: self.wasi.clone(),
            stack_pointer,
            reset,
            component_reset: compiled.component_reset,
            component_start,
        }
    }

    /// The code's tasks: a core module's from its records, read at compile;
    /// a component's by loading it once (its start, the module's top-level
    /// code, and its task list run, under the load's limits, on a thread
    /// with a worker's stack). For a component, also what later loads
    /// start from (`LoadedCode::start_for_later_loads`).
    fn task_list(&self, compiled: &Compiled, config: &InstanceConfig) -> Result<(TaskCatalog, Option<String>)> {
        let code = match &compiled.unit {
            Unit::Module(module) => return Ok((module.catalog(), None)),
            Unit::Component { code, .. } => CompiledCode::Component(code.clone()),
        };
        let engine = compiled.engine.clone();
        let ticker = Ticker::start("wasmpool-epoch", move || engine.increment_epoch())
            .map_err(|e| Error::System(format!("cannot start the deadline thread: {e}")))?;
        let run = self.load_run();
        let loaded = on_load_thread(self.limits.max_stack, || {
            LoadedCode::link(&compiled.engine, &code, config, Some(Arc::new(ticker)), &run, &mut |_| {})
        })?
        .map_err(|failure| probe_error(&compiled.origin, failure))?;
        let start = loaded.start_for_later_loads().map(str::to_owned);
        Ok((Self::catalog(compiled, &loaded), start))
    }

    /// Resolves the settings, reads the module, and compiles and checks it
    /// (through the cache) on the engine the settings call for.
    fn compile(&mut self) -> Result<Compiled> {
        let workers = match self.workers {
            Some(0) => return Err(Error::Config("a pool needs at least one worker".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if let Some(invalid) = self.invalid_settings.take() {
            return Err(Error::Settings(invalid));
        }
        self.limits.validate().map_err(|e| Error::Config(e.to_string()))?;
        if self.load_deadline.is_zero() {
            return Err(Error::Config("a load deadline of zero would refuse every module".into()));
        }
        if let Some(wasi) = &self.wasi {
            wasi.validate().map_err(Error::Config)?;
        }
        let threads = self.kind == WorkerKind::Threads;
        if threads && self.limits.deadline.is_some() && self.interruptible == Some(false) {
            return Err(Error::Config(
                "a deadline needs interruptible thread workers; drop `.interruptible(false)`".into(),
            ));
        }
        // Worker processes are stopped by killing them: their code needs no checks.
        if !threads {
            // Before compiling, which can take long; again below if the
            // module turns out to use WASI.
            self.reply_limit()?;
        }
        let (bytes, origin) = self.take_module()?;
        let is_component = component::is_component(&bytes);
        let settings = self.engine_settings(is_component);
        let epoch_checks = settings.epoch_interruption;
        let cache_dir = match &self.cache {
            CacheSetting::Default => cache::default_dir(),
            CacheSetting::Dir(dir) => Some(dir.clone()),
            CacheSetting::Disabled => None,
        };
        // A component (CPython, for tasks written in Python) compiles for
        // seconds, and most of it is the same after an edit: its functions
        // go through the incremental cache beside the module cache.
        let incremental = cache_dir
            .as_deref()
            .filter(|dir| is_component && cache::private_dir(dir).is_ok())
            .map(|dir| Arc::new(crate::runtime::incremental::IncrementalCache::in_dir(dir)));
        let (engine, allocator) = create_compiling_engine(&settings, incremental.clone())?;
        let rules = self.module_rules();
        let (unit, component_reset) = if is_component {
            // The bounds on compile work, before compiling: the parser
            // walks every core module inside the component, so functions
            // and locals are counted over all of them.
            crate::sandbox::compile_limits::check(&bytes, &self.compile_limits, &self.limits)
                .map_err(|limit| Error::InvalidModule { origin: origin.clone(), cause: ModuleError::Limit(limit) })?;
            // The start argument (a Python module's source) comes off before
            // compiling: every edit of the module compiles to the same code.
            let split = crate::runtime::component_start::split(&bytes).map_err(|why| Error::InvalidModule {
                origin: origin.clone(),
                cause: ModuleError::StartArgument(why),
            })?;
            let start = split.start.map(Arc::from);
            let compiled = self.compile_component(&engine, &split.code, &origin, cache_dir.as_deref())?;
            if let Some(incremental) = &incremental {
                incremental.persist();
            }
            let component_reset = self.mode == InstanceMode::FreshPerTask
                && self.reset_in_place
                && match crate::runtime::fresh_state::check_component(&bytes) {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::debug!("every input gets a new instance of the component: {why}");
                        false
                    }
                };
            if self.wasi.is_none() {
                self.wasi = Some(WasiConfig::new());
            }
            (Unit::Component { code: compiled, bytes, start }, component_reset)
        } else {
            let module = TaskModule::compile_cached(&engine, &bytes, origin.clone(), cache_dir.as_deref(), &rules)?;
            // A `wasm32-wasip1` module runs with WASI, granted nothing unless
            // the builder grants it.
            if module.wasi && self.wasi.is_none() {
                self.wasi = Some(WasiConfig::new());
                if !threads {
                    self.reply_limit()?;
                }
            }
            (Unit::Module(module), false)
        };
        Ok(Compiled {
            origin,
            settings,
            engine,
            allocator,
            unit,
            cache_dir,
            threads,
            epoch_checks,
            workers,
            component_reset,
        })
    }

    /// Compiles a task component through the cache, its core modules
    /// first rewritten so that every observable NaN is canonical (unless
    /// the builder turned that off), as a module's are.
    fn compile_component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        origin: &str,
        cache_dir: Option<&std::path::Path>,
    ) -> Result<Component> {
        let invalid = |cause| Error::InvalidModule { origin: origin.to_owned(), cause };
        let compile_error = |e: wasmtime::Error| invalid(ModuleError::Compile(format!("{e:#}")));
        if !self.canonicalize_nans {
            return cache::compile::<Component>(engine, bytes, cache_dir).map_err(compile_error);
        }
        let rewrite = |bytes: &[u8]| {
            let (code, report) = crate::runtime::canonical_nans::rewrite_component(bytes)?;
            tracing::debug!(module = %crate::text::escape_line(origin), lazy = report.lazy, eager = report.eager,
                checks = report.checks, "NaNs canonicalized where observable, in every core module of the component");
            Ok(code)
        };
        match cache::compile_prepared::<Component>(engine, bytes, cache_dir, &nan_preparation(), rewrite) {
            Ok(component) => Ok(component),
            Err(PreparedError::Compile(e)) => Err(compile_error(e)),
            // Bytes that are not a valid component: the compiler says why
            // precisely (nothing of theirs runs). A valid one the rewrite
            // fails on is refused, never run with the CPU's NaNs unasked.
            Err(PreparedError::Prepare(why)) => match Component::new(engine, bytes) {
                Err(e) => Err(compile_error(e)),
                Ok(_) => Err(invalid(ModuleError::NanRewrite(why))),
            },
        }
    }

    /// The settings of the engines for a module (or, if `is_component`, a
    /// task component) under this builder's settings.
    fn engine_settings(&self, is_component: bool) -> EngineSettings {
        let threads = self.kind == WorkerKind::Threads;
        // A component's load runs CPython's code (its task list): always
        // with epoch checks, so the load deadline holds.
        let epoch_checks =
            is_component || threads && (self.limits.deadline.is_some() || self.interruptible == Some(true));
        EngineSettings {
            allocator: self.allocator,
            // The pooling allocator's slots are sized for a component then.
            component: is_component,
            // Thread workers each get an engine (see `engines_for_workers`);
            // a process pool's own engine only compiles.
            instance_slots: if threads { SLOTS_PER_WORKER_ENGINE } else { 1 },
            max_memory: self.limits.max_memory,
            max_table_elements: self.limits.max_table_elements,
            max_stack: self.limits.max_stack,
            epoch_interruption: epoch_checks,
            consume_fuel: self.limits.fuel.is_some(),
        }
    }

    /// How long loading may take: the load deadline, or the task deadline
    /// when that is shorter (every task instantiates too).
    fn load_limit(&self) -> Duration {
        self.limits.deadline.map_or(self.load_deadline, |d| d.min(self.load_deadline))
    }

    /// The limits guest code runs under while it loads (start functions,
    /// a component's task list, the init task).
    fn load_run(&self) -> RunLimits {
        RunLimits { deadline: Some(self.load_limit()), fuel: self.limits.fuel, ..RunLimits::default() }
    }

    /// What the pool tells its calls of the sandbox; `stoppable` if a
    /// running task can be stopped (epoch checks, or worker processes).
    fn sandbox_info(&self, stoppable: bool) -> SandboxInfo {
        SandboxInfo {
            deadline: self.limits.deadline,
            fuel: self.limits.fuel,
            stoppable,
            stack_size: worker_stack_size(self.limits.max_stack),
        }
    }

    /// The plan [`Pool::start`] follows, for `compiled`'s workers.
    fn start_plan(&self, compiled: &Compiled, allocator: AllocatorKind, sandbox: SandboxInfo, seed: u64) -> StartPlan {
        StartPlan {
            allocator,
            workers: compiled.workers,
            mode: self.mode,
            chunk_size: self.chunk_size,
            sandbox,
            spin: self.spin,
            seed,
            output: self.output.clone(),
        }
    }

    /// What a core module is checked against and how it is rewritten
    /// before compiling, under this builder's settings.
    fn module_rules(&self) -> ModuleRules {
        ModuleRules {
            compile: self.compile_limits,
            limits: self.limits.clone(),
            canonicalize_nans: self.canonicalize_nans,
            marks: self.mode == InstanceMode::FreshPerTask && self.reset_in_place,
        }
    }

    /// The seed given, or a random one.
    fn resolve_seed(&self) -> Result<u64> {
        match self.seed {
            Some(seed) => Ok(seed),
            None => crate::seed::random_seed().map_err(Error::System),
        }
    }

    /// The module's bytes (read from its file if need be) and where they
    /// came from, for messages.
    fn take_module(&mut self) -> Result<(Vec<u8>, String)> {
        Ok(match self.module.take() {
            None => return Err(Error::Config("no task module given: call `module_file` or `module_bytes`".into())),
            Some(ModuleSource::File(path)) => (read_module_file(&path)?, path.display().to_string()),
            Some(ModuleSource::Bytes(bytes)) => (bytes, "<bytes>".to_owned()),
            Some(ModuleSource::Received { bytes, origin }) => (bytes, origin),
        })
    }

    /// The init task, checked against the tasks `catalog` lists: a
    /// component's take their arguments as JSON, a core module's typed
    /// arguments go through its postcard entry point.
    fn init_call(&mut self, catalog: &TaskCatalog, kind: CodeKind, seed: u64) -> Result<Option<Arc<InitCall>>> {
        let Some(PendingInit { task, args }) = self.init.take() else { return Ok(None) };
        let info = catalog.task(&task)?;
        let failure = |f| Error::Task(TaskError { task: task.clone(), index: 0, failure: f });
        let (export, args) = match (args, kind) {
            (InitArgs::Typed { postcard, host_type, .. }, CodeKind::Module) => {
                typecheck::check_args(info, host_type).map_err(|e| failure(TaskFailure::ArgumentTypes(e)))?;
                let args = postcard.map_err(|e| failure(TaskFailure::EncodeArguments(e)))?;
                (wasmpool_abi::task_export_name(&task), args)
            }
            (InitArgs::Typed { json, .. }, CodeKind::Component) => {
                let json = json.map_err(|e| failure(TaskFailure::EncodeArguments(e)))?;
                check_input(json.as_bytes(), info.arity(), &info.to_string()).map_err(failure)?;
                (wasmpool_abi::json_export_name(&task), json.into_bytes())
            }
            (InitArgs::JsonArray(array), _) => {
                if !info.json {
                    return Err(Error::NoJsonEntry { task });
                }
                let args = args_from_array(&array, info.arity()).map_err(failure)?;
                (wasmpool_abi::json_export_name(&task), args.into_bytes())
            }
        };
        let seed = crate::seed::task_seed(seed, &task, 0);
        Ok(Some(Arc::new(InitCall { task, export, args, seed })))
    }

    /// Worker processes: the handshake each new process gets (the compiled
    /// code included), and the watchdog bounding their load and tasks. Each
    /// process loads and probes the code it is sent (`process::child`); the
    /// host loads a component once itself, for its task list.
    fn process_backend(
        &mut self,
        compiled: &Compiled,
        mut config: InstanceConfig,
        seed: u64,
    ) -> Result<(Backend, TaskCatalog, AllocatorKind)> {
        let max_reply = self.reply_limit()?;
        let (catalog, start) = self.task_list(compiled, &config)?;
        if start.is_some() {
            config.component_start = start;
        }
        let unit = compiled.unit.code();
        let init = self.init_call(&catalog, unit.kind(), seed)?;
        let code = unit.serialize().map_err(|e| Error::Engine(format!("{e}, for worker processes")))?;
        let child_engine = EngineSettings {
            allocator: match compiled.allocator {
                AllocatorKind::Pooling => Allocator::Pooling,
                AllocatorKind::OnDemand => Allocator::OnDemand,
            },
            // One task at a time, as in a thread worker: its
            // instance and the one replacing it (or the probe's).
            instance_slots: SLOTS_PER_WORKER_ENGINE,
            ..compiled.settings.clone()
        };
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            wasmpool_version: env!("CARGO_PKG_VERSION").to_owned(),
            worker: 0,
            code,
            kind: unit.kind(),
            engine: child_engine,
            instance: config,
            mode: self.mode,
            init: init.as_deref().cloned(),
        };
        let executable = find_worker_executable(self.processes.explicit_executable()).map_err(|looked| {
            let refused = looked.iter().filter_map(|(path, why)| Some((path.clone(), why.clone()?))).collect();
            Error::WorkerNotFound {
                file_name: worker_file_name(),
                searched: looked.into_iter().map(|(path, _)| path).collect(),
                refused,
            }
        })?;
        let watchdog = Watchdog::start()
            .map_err(|e| Error::System(format!("cannot start the worker processes' watchdog: {e}")))?;
        let spawner = Spawner {
            executable,
            args: self.processes.worker_args().to_vec(),
            hello,
            watchdog,
            load_deadline: self.load_limit(),
            max_reply,
        };
        let backend = Backend::Processes { spawner: Arc::new(spawner), max_retries: self.processes.retries() };
        Ok((backend, catalog, compiled.allocator))
    }

    /// The largest reply a worker process may send under the pool's limits
    /// (`messages::max_reply_len`), or the configuration error saying why
    /// they cannot work with worker processes.
    fn reply_limit(&self) -> Result<u32> {
        max_reply_len(&self.limits, self.wasi.is_some()).ok_or_else(|| {
            Error::Config(format!(
                "max_output of {} bytes makes the replies of worker processes larger than 4 GiB{}; \
                 lower it, or use thread workers",
                self.limits.max_output,
                if self.wasi.is_some() { " (a result, stdout and stderr)" } else { "" }
            ))
        })
    }

    /// Thread workers: an engine each with its copy of the code. The first
    /// is linked and probed under the load limit (`worker::load`), then the
    /// others are linked, starting where the first one's start left off.
    /// Guest code run at load runs on a thread with a worker's stack.
    fn thread_backend(
        &mut self,
        compiled: &Compiled,
        mut config: InstanceConfig,
        seed: u64,
    ) -> Result<(Backend, TaskCatalog, AllocatorKind)> {
        let Compiled { origin, settings, engine, .. } = compiled;
        let first = (engine.clone(), compiled.unit.code());
        let recompile = |engine: &Engine| self.compile_again(compiled, engine);
        let (engines, allocator) =
            engines_for_workers(first, &recompile, settings, compiled.allocator, compiled.workers)?;
        let ticker = if compiled.epoch_checks {
            let epochs: Vec<_> = engines.iter().map(|(engine, _)| engine.clone()).collect();
            let ticker = Ticker::start("wasmpool-epoch", move || epochs.iter().for_each(|e| e.increment_epoch()))
                .map_err(|e| Error::System(format!("cannot start the deadline thread: {e}")))?;
            Some(Arc::new(ticker))
        } else {
            None
        };
        let run = self.load_run();
        let failed = |failure| probe_error(origin, failure);
        let noop = &mut |_: &LoadStep| {};
        let (codes, catalog) = on_load_thread(self.limits.max_stack, || -> Result<_> {
            let (first_engine, first_code) = &engines[0];
            let first =
                LoadedCode::link(first_engine, first_code, &config, ticker.clone(), &run, noop).map_err(failed)?;
            let catalog = Self::catalog(compiled, &first);
            let init = self.init_call(&catalog, first_code.kind(), seed)?;
            let first = first.with_init(init.clone());
            match self.guarded_probe(compiled, &config, init.is_some())? {
                Some(prober) => probe(&prober, init.as_deref(), &run, noop),
                None => first.probe(&run, noop),
            }
            .map_err(failed)?;
            if let Some(start) = first.start_for_later_loads() {
                config.component_start = Some(start.to_owned());
            }
            let mut loaded = vec![first];
            for (engine, code) in &engines[1..] {
                let more = LoadedCode::link(engine, code, &config, ticker.clone(), &run, noop).map_err(failed)?;
                loaded.push(more.with_init(init.clone()));
            }
            Ok((loaded.into_iter().map(|code| code.into_worker(self.mode)).collect(), catalog))
        })??;
        Ok((Backend::Threads { codes }, catalog, allocator))
    }

    /// The pool's tasks: a core module's from its records, read at compile;
    /// a component's as `loaded`, its first load, listed them.
    fn catalog(compiled: &Compiled, loaded: &LoadedCode) -> TaskCatalog {
        match &compiled.unit {
            Unit::Module(module) => module.catalog(),
            Unit::Component { .. } => {
                TaskCatalog::new(loaded.listed_tasks().unwrap_or_default().to_vec(), compiled.origin.clone())
            }
        }
    }

    /// The code compiled once more (through the cache), for `engine`: a
    /// worker's engine whose allocator differs from the compiling engine's
    /// (`engines_for_workers`).
    fn compile_again(&self, compiled: &Compiled, engine: &Engine) -> Result<CompiledCode> {
        let cache_dir = compiled.cache_dir.as_deref();
        match &compiled.unit {
            Unit::Module(module) => cache::compile(engine, &module.code, cache_dir)
                .map(CompiledCode::Module)
                .map_err(|e| Error::Engine(format!("cannot compile the module for a worker's engine: {e:#}"))),
            Unit::Component { bytes, .. } => {
                // Split without error when the pool was built.
                let code = crate::runtime::component_start::split(bytes).map_err(Error::Engine)?.code;
                self.compile_component(engine, &code, &compiled.origin, cache_dir).map(CompiledCode::Component)
            }
        }
    }

    /// A copy of a core module compiled with epoch checks, to probe it in,
    /// when the pool's own code has none and guest code run at load might
    /// not return (`LoadCode`; an init task always might): so the load
    /// deadline holds. `None` when the pool's code can be probed as it is
    /// (a component always can: it always has epoch checks).
    fn guarded_probe(&self, compiled: &Compiled, config: &InstanceConfig, init: bool) -> Result<Option<Instantiator>> {
        let Unit::Module(module) = &compiled.unit else { return Ok(None) };
        let load_may_hang =
            module.load_code.may_hang || (self.wasi.is_some() && module.load_code.initialize_may_hang) || init;
        if compiled.epoch_checks || !load_may_hang {
            return Ok(None);
        }
        interruptible_copy(&compiled.settings, &module.code, compiled.cache_dir.as_deref(), config, &compiled.origin)
            .map(Some)
    }
}

/// Runs `load` on a thread whose stack has room for a Wasm stack of
/// `max_stack` bytes, as a worker's has: guest code run at load (start
/// functions, a component's start, the init task) must not be cut short by
/// the caller's stack (1 MiB for a main thread on Windows). In the
/// caller's tracing span.
fn on_load_thread<T: Send>(max_stack: usize, load: impl FnOnce() -> T + Send) -> Result<T> {
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("wasmpool-load".into())
            .stack_size(worker_stack_size(max_stack))
            .spawn_scoped(scope, move || span.in_scope(load))
            .map_err(|e| Error::System(format!("cannot start the thread loading the task code: {e}")))?
            .join()
            .map_err(|panic| {
                let what = crate::worker::executor::panic_text(&*panic);
                Error::Engine(format!("internal error while loading the task code: {what}"))
            })
    })
}

/// What `build` and `inspect` share: the module compiled and checked on the
/// engine the settings call for.
struct Compiled {
    origin: String,
    settings: EngineSettings,
    engine: Engine,
    allocator: AllocatorKind,
    unit: Unit,
    cache_dir: Option<PathBuf>,
    threads: bool,
    /// Whether the compiled code checks the epoch (thread workers that can
    /// be stopped: `PoolBuilder::interruptible`, or a deadline).
    epoch_checks: bool,
    workers: usize,
    /// For a task component: whether workers reset one instance in place
    /// between inputs (fresh state per input, the component allowing it).
    component_reset: bool,
}

/// What was compiled: a core module (tasks written in Rust, the ABI of
/// docs/abi.md) or a component (the `wasmpool:task` world: tasks written
/// in Python).
enum Unit {
    Module(TaskModule),
    /// A compiled task component; its tasks are known once it is loaded.
    Component {
        code: Component,
        /// The component as given (its start section included), for an
        /// engine that needs it compiled again ([`PoolBuilder::compile_again`]).
        bytes: Vec<u8>,
        /// Its start argument (`runtime::component_start`): the source of
        /// tasks written in Python.
        start: Option<Arc<str>>,
    },
}

impl Unit {
    fn kind(&self) -> CodeKind {
        match self {
            Unit::Module(_) => CodeKind::Module,
            Unit::Component { .. } => CodeKind::Component,
        }
    }

    /// The compiled code, whichever its kind (it is shared, not copied).
    fn code(&self) -> CompiledCode {
        match self {
            Unit::Module(module) => CompiledCode::Module(module.module.clone()),
            Unit::Component { code, .. } => CompiledCode::Component(code.clone()),
        }
    }
}

/// What calls need to know about the pool's sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SandboxInfo {
    pub deadline: Option<Duration>,
    pub fuel: Option<u64>,
    /// Whether running tasks can be stopped (deadlines, cancellation):
    /// thread workers whose code checks the epoch, or worker processes
    /// (killed).
    pub stoppable: bool,
    /// Native stack of a worker thread: room for the Wasm stack and the host.
    pub stack_size: usize,
}

/// For the spec-suite test (`tests/spec_suite.rs`) only, through
/// `wasmpool::__internal`: what a pool compiles for a core module. Not part
/// of the API.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct PoolCode {
    /// The bytes the pool compiles: the module rewritten so that every NaN
    /// it can observe is canonical, then prepared for resets in place.
    pub code: Vec<u8>,
    /// How the pool resets an instance of it between tasks: `Ok(true)` if
    /// its writes mark their pages, `Ok(false)` if the kernel's page scan
    /// finds them; otherwise why it is not reset in place (every task then
    /// gets a new instance, and only the NaN rewrite applies).
    pub reset: std::result::Result<bool, String>,
}

/// For the spec-suite test only: both load-time rewrites applied to `bytes`
/// as a pool built with `Pool::builder().max_memory(max_memory)` (every
/// other setting its default: canonical NaNs, a fresh state per task from
/// an instance reset in place) applies them before compiling, through the
/// same code (`PoolBuilder::module_rules`, then `prepare_code`, which
/// `TaskModule::compile_cached` calls). An error is the pool's refusal of
/// the module (a valid module the NaN rewrite fails on).
#[doc(hidden)]
pub fn pool_code(bytes: &[u8], max_memory: usize) -> std::result::Result<PoolCode, String> {
    let rules = PoolBuilder::default().max_memory(max_memory).module_rules();
    let prepared = prepare_code(bytes, "<test>", &rules).map_err(|e| e.to_string())?;
    Ok(PoolCode { code: prepared.prepared, reset: prepared.reset.map(|plan| plan.marks) })
}

/// For the spec-suite test only: an engine with the settings of a thread
/// pool's engines (the same code, `PoolBuilder::engine_settings`) built
/// with `Pool::builder().max_memory(max_memory).allocator(Allocator::OnDemand)`,
/// every other setting its default (no deadline, no fuel). On-demand
/// allocation, the pool's fallback from pooling, because a test script
/// keeps many instances alive at once where a worker's pooling engine has
/// two slots.
#[doc(hidden)]
pub fn pool_engine(max_memory: usize) -> std::result::Result<Engine, String> {
    let settings = PoolBuilder::default().max_memory(max_memory).allocator(Allocator::OnDemand).engine_settings(false);
    create_engine(&settings).map(|(engine, _)| engine).map_err(|e| e.to_string())
}
