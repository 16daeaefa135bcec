//! Cluster mode: one pool over the ranks of an MPI job (`mpirun`, `srun`).
//!
//! Rank 0 builds its pool with `PoolBuilder::cluster`
//! and uses it as any pool (`map`, `map_each`, `imap`, `imap_unordered`,
//! `call`, `submit`): its queue is served by its own workers and by every
//! other rank, each running a local pool of thread or process workers. The
//! other ranks run the same program; their
//! `PoolBuilder::build_or_serve` serves rank 0 until
//! it drops its pool.
//!
//! ```no_run
//! # #[cfg(feature = "mpi")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use wasmpool::{Pool, cluster::Cluster};
//! let cluster = Cluster::join()?; // MPI_Init: under `mpirun -np 4 …`
//! if let Some(pool) = Pool::builder().module_file("guest_tasks.wasm").seed(7).cluster(cluster).build_or_serve()? {
//!     // Rank 0 only: the map spans every rank's workers.
//!     let roots: Vec<f64> = pool.map("sqrt", (0..100_000).map(f64::from))?;
//!     # let _ = roots;
//! }
//! # Ok(()) }
//! # #[cfg(not(feature = "mpi"))] fn main() {}
//! ```
//!
//! How it works (`docs/cluster.md` has the whole story):
//! - set-up: rank 0 broadcasts the module's bytes with their SHA-256, its
//!   seed and the settings that change results; every rank checks the hash,
//!   builds its pool and answers with its engine's compatibility hash (the
//!   wasmtime version, settings and CPU features its code is compiled for).
//!   A rank that differs is refused, by rank and host, before any task runs;
//! - jobs: rank 0's dispatcher thread takes chunks from the pool's queue
//!   (where its own workers take them too) and sends each rank batches of
//!   them, up to a window of two chunks per worker of that rank; results
//!   come back in batches. Each input keeps its index in its call, so its
//!   seed, and its result, do not depend on the rank that ran it;
//! - liveness: every rank hears from the other side at least once a second;
//!   a rank silent for the rank timeout (`Cluster::rank_timeout`), or one
//!   that keeps answering but holds a job longer than its inputs' deadlines
//!   allow, fails the inputs it held with
//!   [`TaskFailure::RankLost`](crate::TaskFailure::RankLost).
//!   Waiting ranks sleep between polls rather than spin;
//! - every message a rank receives is sized before it is received, against
//!   what the pool's limits allow the sender to send (`policy.rs`); a rank
//!   that sends more is lost, its message left unreceived;
//! - a wall-time deadline failure is run once more on another rank before
//!   it is reported (a stalled node is not the input's fault); fuel, memory
//!   and every other failure are deterministic and reported as they are.
//!
//! [`launcher`], [`launched_rank`], the errors and the wire format need no
//! MPI; `Cluster` and the builder's `cluster` and `build_or_serve` need the
//! `mpi` cargo feature (documented when it is on: `cargo doc --features mpi`).

#[cfg(feature = "mpi")]
mod fault;
#[cfg(feature = "mpi")]
mod follower;
#[cfg(feature = "mpi")]
mod leader;
#[cfg(feature = "mpi")]
mod link;
pub(crate) mod policy;
#[cfg(feature = "mpi")]
mod setup;
pub(crate) mod wire;

#[cfg(feature = "mpi")]
pub(crate) use follower::serve;
#[cfg(feature = "mpi")]
pub(crate) use leader::Leader;
#[cfg(feature = "mpi")]
pub use setup::Cluster;
#[cfg(feature = "mpi")]
pub(crate) use setup::{follow, gather, lead, report};

use crate::text::EscapedLine as Line;
use std::time::Duration;

/// The exit status (`EX_TEMPFAIL`) of a job that stopped because a rank
/// went silent or was lost: not the inputs' fault, so worth running again
/// with `--resume`; a requeue wrapper (`sbatch --requeue`) recognises it.
pub const EXIT_RANK_LOST: u8 = 75;

/// How long rank 0 waits to hear from a rank before it counts it as lost,
/// unless `Cluster::rank_timeout` says otherwise. Healthy ranks are heard
/// from every second.
pub const DEFAULT_RANK_TIMEOUT: Duration = Duration::from_secs(10);

/// Times a wall-time deadline failure is run again on another rank before
/// it is reported.
pub const DEADLINE_RETRIES: u32 = 1;

/// What went wrong with the cluster itself (not with a task).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `Cluster::join` outside an MPI job.
    #[error(
        "not started by an MPI launcher (no OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in the \
         environment): run it with `mpirun -np N …` or `srun --mpi=pmix -n N …`"
    )]
    NotLaunched,
    /// MPI could not be initialised, or was already.
    #[error("cannot initialise MPI: {}", Line(.0))]
    Init(String),
    /// A rank could not join: another module, engine, settings or version.
    #[error("rank {rank} (host {}) cannot join the pool: {}", Line(host), Line(reason))]
    Refused {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// Rank 0 refused this rank, or another one (the job stops).
    #[error("rank 0 stopped the job at set-up: {}", Line(.0))]
    Stopped(String),
    /// A rank sent something that is not a cluster message.
    #[error("rank {rank} (host {}) broke the cluster protocol: {}", Line(host), Line(reason))]
    Protocol {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// A rank was not heard from within the rank timeout.
    #[error("rank {rank} (host {}) went silent: nothing heard from it for {after:?}", Line(host))]
    Silent {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// How long it was silent.
        after: Duration,
    },
    /// A rank kept answering but held a job longer than its inputs'
    /// deadlines allow: every input run one after another, each to its
    /// deadline and its worker process's retries, behind every job the rank
    /// held before it, and the rank timeout on top.
    #[error(
        "rank {rank} (host {}) answers but makes no progress: it has held a job of {inputs} input(s) for \
         {held:?}, longer than their deadlines allow",
        Line(host)
    )]
    Stalled {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// The inputs of the job it held too long.
        inputs: usize,
        /// How long it had held it.
        held: Duration,
    },
    /// A rank sent a message larger than the pool's limits allow it to
    /// send; it was left unreceived (nothing was allocated for it).
    #[error(
        "rank {rank} (host {}) sent a message of {len} bytes, more than the {limit} bytes the pool's limits \
         allow for what it holds; it was not received",
        Line(host)
    )]
    Oversized {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// The message's size.
        len: u64,
        /// The most it could have sent.
        limit: u64,
    },
    /// Rank 0's set-up (the module and what comes with it) is larger than
    /// this rank accepts: its compile limit on the module's size, and room
    /// for the rest. Nothing was received.
    #[error(
        "rank 0's module and set-up are {len} bytes, more than this rank accepts ({limit} bytes: its compile \
         limit on a module's size and room for the rest); nothing was received"
    )]
    SetupTooLarge {
        /// The set-up's size.
        len: u64,
        /// The most this rank accepts.
        limit: u64,
    },
}

/// What one rank of a cluster pool has done, for
/// [`Pool::cluster_stats`](crate::Pool::cluster_stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankStats {
    /// The rank (0 is the one holding the pool).
    pub rank: usize,
    /// Its host name.
    pub host: String,
    /// Its workers.
    pub workers: usize,
    /// Inputs it ran.
    pub tasks: u64,
    /// Time its workers spent running them, summed.
    pub busy: Duration,
    /// Inputs its worker processes ran again after a crash.
    pub retries: u64,
    /// Inputs that failed at their deadline there and were sent to another
    /// rank (counted on the rank where they failed).
    pub deadline_retries: u64,
}

/// The MPI launcher's environment variable this process was started with,
/// if any: `mpirun` (Open MPI) sets `OMPI_COMM_WORLD_SIZE`, PMIx launchers
/// (`srun --mpi=pmix`, `prterun`) `PMIX_RANK`, Hydra (MPICH) `PMI_RANK`.
/// Needs no MPI: a build without the `mpi` feature uses it to refuse to run
/// one whole job per rank.
pub fn launcher() -> Option<&'static str> {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].into_iter().find(|name| std::env::var_os(name).is_some())
}

/// This process's rank as its MPI launcher set it in the environment
/// (`OMPI_COMM_WORLD_RANK`, `PMIX_RANK` or `PMI_RANK`), if any: for what
/// must be decided before MPI starts, such as whether to read files only
/// rank 0 has.
pub fn launched_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
}
