//! The pool: worker threads sharing one compiled module, and the calls that
//! put them to work.

mod builder;
pub(crate) mod exchange;
pub(crate) mod handle;
pub(crate) mod json;
pub(crate) mod settings;

mod task_ref;

pub use crate::spin::DEFAULT_IDLE_SPIN;
pub(crate) use builder::SandboxInfo;
pub use builder::{PoolBuilder, WorkerKind};
pub use settings::{DEFAULT_LOAD_DEADLINE, DirGrant, SETTING_NAMES, Settings};
// For the spec-suite test only (`wasmpool::__internal`).
pub use builder::{PoolCode, pool_code, pool_engine};
pub use task_ref::TaskRef;

use crate::error::{Error, Result, TaskError};
use crate::pool::exchange::Exchange;
use crate::pool::handle::TaskHandle;
use crate::process::supervisor::{ProcessRunner, ProcessSlot, SpawnError, Spawner};
use crate::runtime::engine::AllocatorKind;
use crate::runtime::module::{TaskCatalog, TaskInfo};
use crate::sandbox::output::OutputSink;
use crate::scheduler::chunking::ChunkSize;
use crate::scheduler::stream::{Imap, ImapUnordered};
use crate::worker::code::WorkerCode;
use crate::worker::executor::InstanceMode;
use crate::worker::jobs::Job;
use crate::worker::probe::probe_error;
use crate::worker::stats::{PoolStats, WorkerCounters};
use crate::worker::{ItemRunner, Worker};
use crossbeam_channel::{Sender, unbounded};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A pool of worker threads running the tasks of one Wasm module.
///
/// Every worker runs its own instances of the same compiled module, so every
/// task exists in every worker. Arguments are copied in and results copied
/// out as postcard buffers; nothing is shared between host and guest.
///
/// ```no_run
/// # fn main() -> wasmpool::Result<()> {
/// use wasmpool::Pool;
/// let pool = Pool::builder().module_file("guest_tasks.wasm").workers(4).build()?;
/// let roots: Vec<f64> = pool.map("sqrt", (0..100).map(f64::from))?;
/// # Ok(()) }
/// ```
///
/// A `Pool` is `Send + Sync`: share it between threads by reference or in
/// an `Arc`. Dropping it fails queued tasks with
/// [`TaskFailure::PoolClosed`](crate::TaskFailure::PoolClosed) and stops
/// running ones with the same failure where it can: worker processes are
/// killed, thread workers stop their task at its next epoch check if the
/// pool is interruptible (a deadline, or
/// [`interruptible`](crate::PoolBuilder::interruptible)); otherwise a running
/// task ends first. Then it joins the workers.
pub struct Pool {
    module: TaskCatalog,
    queue: Option<Sender<Job>>,
    worker_queues: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    closing: Arc<AtomicBool>,
    allocator: AllocatorKind,
    mode: InstanceMode,
    chunk_size: ChunkSize,
    kind: WorkerKind,
    /// Process mode: each worker's current process.
    processes: Vec<Arc<ProcessSlot>>,
    pub(crate) sandbox: SandboxInfo,
    /// How long waiting threads spin before they sleep.
    pub(crate) spin: Duration,
    /// The seed every task's own seed derives from.
    pub(crate) seed: u64,
    /// Where printed output goes when the caller does not take it.
    pub(crate) output: OutputSink,
    /// Each worker's counters, for [`Pool::stats`].
    counters: Vec<Arc<WorkerCounters>>,
    /// The receiving end of `queue`, for a cluster's dispatcher.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    jobs: crossbeam_channel::Receiver<Job>,
    /// The engine's compatibility hash (see `engine::compatibility_hash`).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    engine_hash: u64,
    /// Cluster mode, on rank 0: the dispatcher serving the other ranks.
    #[cfg(feature = "mpi")]
    leader: Option<crate::cluster::Leader>,
}

/// The settings `build` resolved, for [`Pool::start`].
pub(crate) struct StartPlan {
    pub allocator: AllocatorKind,
    pub workers: usize,
    pub mode: InstanceMode,
    pub chunk_size: ChunkSize,
    pub sandbox: SandboxInfo,
    pub spin: Duration,
    pub seed: u64,
    pub output: OutputSink,
}

/// The stack of a worker process's thread in the host, which only tends
/// the process (tasks run in the process, on its own worker stack).
const TENDER_STACK_SIZE: usize = 256 << 10;

/// How the workers run tasks, as `build` prepared it.
pub(crate) enum Backend {
    /// Thread workers: each worker's task code (of either kind), each on
    /// its own engine.
    Threads {
        codes: Vec<WorkerCode>,
    },
    Processes {
        spawner: Arc<Spawner>,
        max_retries: u32,
    },
}

/// What one worker is started with.
#[allow(clippy::large_enum_variant, reason = "one per worker started, moved once")]
enum WorkerBackend<'a> {
    Thread(WorkerCode),
    Process(&'a Arc<Spawner>, u32),
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("module", &self.module.origin)
            .field("workers", &self.threads.len())
            .field("allocator", &self.allocator)
            .field("mode", &self.mode)
            .field("kind", &self.kind)
            .field("seed", &self.seed)
            .finish()
    }
}

impl Pool {
    /// Starts configuring a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    fn start(module: TaskCatalog, backend: Backend, plan: StartPlan) -> Result<Pool> {
        let StartPlan { allocator, workers, mode, chunk_size, sandbox, spin, seed, output } = plan;
        let (queue, jobs) = unbounded::<Job>();
        let kind = match backend {
            Backend::Threads { .. } => WorkerKind::Threads,
            Backend::Processes { .. } => WorkerKind::Processes,
        };
        let mut pool = Pool {
            module,
            queue: Some(queue),
            worker_queues: Vec::with_capacity(workers),
            threads: Vec::with_capacity(workers),
            closing: Arc::new(AtomicBool::new(false)),
            allocator,
            mode,
            chunk_size,
            kind,
            processes: Vec::new(),
            sandbox,
            spin,
            seed,
            output,
            counters: Vec::with_capacity(workers),
            jobs,
            engine_hash: 0,
            #[cfg(feature = "mpi")]
            leader: None,
        };
        let spinning = Arc::new(AtomicBool::new(false));
        // On error `pool` is dropped, which stops the workers already started.
        match backend {
            Backend::Threads { codes } => {
                if codes.len() != workers {
                    return Err(Error::Engine(format!("{} workers' code was prepared for {workers}", codes.len())));
                }
                for (id, code) in codes.into_iter().enumerate() {
                    pool.start_worker(id, WorkerBackend::Thread(code), &spinning)?;
                }
            }
            Backend::Processes { spawner, max_retries } => {
                for id in 0..workers {
                    pool.start_worker(id, WorkerBackend::Process(&spawner, max_retries), &spinning)?;
                }
            }
        }
        Ok(pool)
    }

    /// Starts worker `id`'s thread: running tasks on its own engine, or
    /// tending its worker process (started and probed here).
    fn start_worker(&mut self, id: usize, backend: WorkerBackend<'_>, spinning: &Arc<AtomicBool>) -> Result<()> {
        let (own_tx, own_rx) = unbounded::<Job>();
        let counters = Arc::new(WorkerCounters::default());
        self.counters.push(counters.clone());
        let (closing, spin, spinning) = (self.closing.clone(), self.spin, spinning.clone());
        let thread = match backend {
            WorkerBackend::Thread(runner) => {
                let worker = Worker { id, runner, closing, spin, spinning, counters };
                spawn_worker(worker, self.jobs.clone(), own_rx, self.sandbox.stack_size)
            }
            WorkerBackend::Process(spawner, max_retries) => {
                let slot = Arc::new(ProcessSlot::default());
                self.processes.push(slot.clone());
                let runner =
                    ProcessRunner::start(id, spawner.clone(), slot, closing.clone(), max_retries, counters.clone())
                        .map_err(|e| match e {
                            SpawnError::Start(reason) => Error::WorkerStart { worker: id, reason },
                            SpawnError::Probe(failure) => probe_error(&self.module.origin, failure),
                        })?;
                let worker = Worker { id, runner, closing, spin, spinning, counters };
                spawn_worker(worker, self.jobs.clone(), own_rx, TENDER_STACK_SIZE)
            }
        }
        .map_err(|source| Error::Spawn { worker: id, source })?;
        self.worker_queues.push(own_tx);
        self.threads.push(thread);
        Ok(())
    }

    /// The tasks the module offers, in the module's order.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.module.tasks
    }

    /// Number of workers (threads, or processes and the threads that tend
    /// them); in cluster mode, those of every rank.
    pub fn workers(&self) -> usize {
        self.threads.len() + self.remote_workers()
    }

    /// Cluster mode: workers on the other ranks.
    fn remote_workers(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(leader) = &self.leader {
            return leader.remote_workers();
        }
        0
    }

    /// Cluster mode: what every rank has done so far (rank 0 first), as
    /// last heard (every rank reports at least once a second). `None` for
    /// a pool on one machine.
    pub fn cluster_stats(&self) -> Option<Vec<crate::cluster::RankStats>> {
        #[cfg(feature = "mpi")]
        if let Some(leader) = &self.leader {
            let own = self.stats();
            let mut ranks = vec![crate::cluster::RankStats {
                rank: 0,
                host: leader.host().to_owned(),
                workers: self.threads.len(),
                tasks: own.tasks(),
                busy: own.workers.iter().map(|w| w.busy).sum(),
                retries: own.workers.iter().map(|w| w.retries).sum(),
                deadline_retries: 0,
            }];
            ranks.extend(leader.ranks());
            return Some(ranks);
        }
        None
    }

    /// Ends the process with exit status `code`; in cluster mode, the
    /// whole MPI job (`MPI_Abort`): for a program that cannot go on after a
    /// lost rank (the job cannot be finalised cleanly then), once it has
    /// saved what it must.
    pub fn abort_cluster(&self, code: u8) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(leader) = &self.leader {
            leader.abort(i32::from(code));
        }
        std::process::exit(i32::from(code))
    }

    /// Cluster mode: the ranks lost so far (silent past the rank timeout,
    /// or broken messages). Their inputs failed with
    /// [`TaskFailure::RankLost`](crate::TaskFailure::RankLost); the pool goes
    /// on with the others. Empty for a pool on one machine.
    pub fn lost_ranks(&self) -> Vec<crate::cluster::ClusterError> {
        #[cfg(feature = "mpi")]
        if let Some(leader) = &self.leader {
            return leader.lost();
        }
        Vec::new()
    }

    /// The instance allocator in use (pooling, or the on-demand fallback).
    pub fn allocator(&self) -> AllocatorKind {
        self.allocator
    }

    /// Threads or processes.
    pub fn worker_kind(&self) -> WorkerKind {
        self.kind
    }

    /// Process mode: the process id of each worker's current process (`None`
    /// while one is being replaced). Empty for thread pools.
    pub fn worker_pids(&self) -> Vec<Option<u32>> {
        self.processes.iter().map(|slot| slot.pid()).collect()
    }

    /// An [`Exchange`]: start many tasks, then handle their messages,
    /// progress and results as they arrive. `M` is the type of the tasks'
    /// messages, `R` of their results. It holds up to
    /// [`DEFAULT_EXCHANGE_CAPACITY`](crate::DEFAULT_EXCHANGE_CAPACITY)
    /// events not yet taken.
    pub fn exchange<M: DeserializeOwned, R: DeserializeOwned>(&self) -> Exchange<'_, M, R> {
        Exchange::new(self, crate::pool::exchange::DEFAULT_EXCHANGE_CAPACITY)
    }

    /// An [`Exchange`] holding up to `capacity` events not yet taken
    /// (at least 1): a task sending more waits for room.
    pub fn exchange_with_capacity<M: DeserializeOwned, R: DeserializeOwned>(
        &self,
        capacity: usize,
    ) -> Exchange<'_, M, R> {
        Exchange::new(self, capacity)
    }

    /// The pool's seed: the one given to
    /// [`PoolBuilder::seed`](crate::PoolBuilder::seed), or the random one
    /// drawn at `build`. Build a pool with it to repeat a run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// What each worker has done so far: tasks run, time busy, and (worker
    /// processes) retries after a crash.
    pub fn stats(&self) -> PoolStats {
        PoolStats { workers: self.counters.iter().map(|c| c.snapshot()).collect() }
    }

    /// The pool's instance mode.
    pub fn instance_mode(&self) -> InstanceMode {
        self.mode
    }

    /// A task by name, to call with per-call options such as a chunk size.
    /// Fails with [`Error::NoSuchTask`] (listing the tasks that exist) if the
    /// module has no such task.
    pub fn task(&self, name: &str) -> Result<TaskRef<'_>> {
        let info = self.module.task(name)?;
        Ok(TaskRef::new(self, info, self.chunk_size))
    }

    /// Runs one task and waits for its result.
    pub fn call<A: Serialize, R: DeserializeOwned>(&self, task: &str, args: A) -> Result<R> {
        self.task(task)?.call(args)
    }

    /// Starts one task and returns a handle to wait on (or `.await`).
    pub fn submit<A: Serialize, R: DeserializeOwned>(&self, task: &str, args: A) -> Result<TaskHandle<R>> {
        self.task(task)?.submit(args)
    }

    /// Runs the task on every input and returns the results in input order;
    /// the first failure to arrive stops the map and is returned.
    pub fn map<I, R>(&self, task: &str, inputs: I) -> Result<Vec<R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        self.task(task)?.map(inputs)
    }

    /// Runs the task on every input and returns each input's own result, in
    /// input order: failures do not stop the others.
    pub fn map_each<I, R>(&self, task: &str, inputs: I) -> Result<Vec<Result<R, TaskError>>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        self.task(task)?.map_each(inputs)
    }

    /// A lazy map yielding results in input order. Inputs are pulled only as
    /// workers free up, so an endless iterator runs in bounded memory.
    pub fn imap<I, R>(&self, task: &str, inputs: I) -> Result<Imap<'_, I::IntoIter, R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        self.task(task)?.imap(inputs)
    }

    /// Like [`imap`](Pool::imap), but yields `(input index, result)` as soon
    /// as each result is ready.
    pub fn imap_unordered<I, R>(&self, task: &str, inputs: I) -> Result<ImapUnordered<'_, I::IntoIter, R>>
    where
        I: IntoIterator,
        I::Item: Serialize,
        R: DeserializeOwned,
    {
        self.task(task)?.imap_unordered(inputs)
    }

    /// Runs the task once on every worker and returns each worker's result,
    /// in worker order (in [`InstanceMode::PerWorker`], on its kept instance).
    pub fn broadcast<A: Serialize, R: DeserializeOwned>(
        &self,
        task: &str,
        args: A,
    ) -> Result<Vec<Result<R, TaskError>>> {
        self.task(task)?.broadcast(args)
    }

    pub(crate) fn queue(&self) -> Option<&Sender<Job>> {
        self.queue.as_ref()
    }

    pub(crate) fn worker_queues(&self) -> &[Sender<Job>] {
        &self.worker_queues
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        // Worker processes are killed rather than waited for: their threads
        // then see them end, and answer what is left with `PoolClosed`.
        for slot in &self.processes {
            slot.kill();
        }
        self.queue = None;
        self.worker_queues.clear();
        for thread in self.threads.drain(..) {
            // A worker that panicked has already reported its tasks' failure.
            let _ = thread.join();
        }
        #[cfg(feature = "mpi")]
        if let Some(mut leader) = self.leader.take() {
            leader.close();
        }
    }
}

fn spawn_worker<R: ItemRunner + Send + 'static>(
    worker: Worker<R>,
    shared: crossbeam_channel::Receiver<Job>,
    own: crossbeam_channel::Receiver<Job>,
    stack_size: usize,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("wasmpool-worker-{}", worker.id))
        .stack_size(stack_size)
        .spawn(move || worker.run(shared, own))
}
