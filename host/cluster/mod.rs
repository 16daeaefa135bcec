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

pub use crate::error::ClusterError;
#[cfg(feature = "mpi")]
pub(crate) use follower::serve;
#[cfg(feature = "mpi")]
pub(crate) use leader::Leader;
#[cfg(feature = "mpi")]
pub use setup::Cluster;
#[cfg(feature = "mpi")]
pub(crate) use setup::{follow, gather, lead, report};

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

/// The launcher's environment variable this process was started with, if
/// any: `mpirun` (Open MPI) sets `OMPI_COMM_WORLD_SIZE`, PMIx launchers
/// (`srun --mpi=pmix`, `prterun`) `PMIX_RANK`, Hydra (MPICH) `PMI_RANK`;
/// and `srun -n N` with N above 1 sets `SLURM_STEP_NUM_TASKS` whatever its
/// MPI plugin, so a job step of several tasks started without one (`srun
/// --mpi=none`, Slurm's default) is seen too, and refused by
/// `Cluster::join` (feature `mpi`) rather than run once per task. Needs no MPI: a build without the `mpi` feature uses it to
/// refuse to run one whole job per rank.
pub fn launcher() -> Option<&'static str> {
    launcher_in(&environment)
}

/// The environment variable that, set to `off`, makes each task of a Slurm
/// job step started without an MPI plugin run on its own: for steps whose
/// tasks are meant to be independent jobs, each with its own output
/// (`srun -n 4 bash -c 'wasmpool run … -o out.$SLURM_PROCID'`, `srun
/// --multi-prog`). It changes nothing under an MPI launcher (`mpirun`,
/// `srun --mpi=pmix`), whose ranks always form one job: an `off` inherited
/// from a batch script must not make every rank write the same output.
pub const CLUSTER_ENV: &str = "WASMPOOL_CLUSTER";

/// Refuses, before MPI starts or anything is read, a launch whose processes
/// could never form one job: an `srun` step of several tasks with no MPI
/// plugin. `Cluster::join` (feature `mpi`) makes the same check, and also
/// refuses an MPI world of one where the launcher started several.
pub fn check_launch() -> Result<(), ClusterError> {
    match (launcher(), launched_size()) {
        (Some(SLURM_STEP_TASKS), Some(LaunchedSize { processes, variable })) => {
            Err(ClusterError::AloneInWorld { processes, variable })
        }
        _ => Ok(()),
    }
}

/// A variable of this process's environment, if set and text.
fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// [`launcher`] in the environment `env` gives.
fn launcher_in(env: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
    let mpi = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].into_iter().find(|name| env(name).is_some());
    if mpi.is_some() {
        return mpi;
    }
    if env(CLUSTER_ENV).is_some_and(|value| value.trim().eq_ignore_ascii_case("off")) {
        return None;
    }
    launched_size_in(env).filter(|launched| launched.processes > 1).map(|launched| launched.variable)
}

/// The variable an `srun` job step sets to its number of tasks, whatever
/// its MPI plugin.
pub(crate) const SLURM_STEP_TASKS: &str = "SLURM_STEP_NUM_TASKS";

/// How many processes the launcher says it started, as one of its
/// environment variables tells it, before MPI starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchedSize {
    /// The number of processes.
    pub processes: usize,
    /// The variable that says so.
    pub variable: &'static str,
}

/// The launcher's count of the processes it started, if it set one:
/// `OMPI_COMM_WORLD_SIZE` (mpirun, for the ranks it starts itself), then
/// `PMI_SIZE` (PMI launchers, such as MPICH's Hydra, whose `srun` starts
/// one proxy per node), then `SLURM_STEP_NUM_TASKS` (the tasks of an
/// `srun` job step; unlike `SLURM_NTASKS`, never set in a batch script that
/// runs one process).
pub fn launched_size() -> Option<LaunchedSize> {
    launched_size_in(&environment)
}

/// [`launched_size`] in the environment `env` gives.
fn launched_size_in(env: &dyn Fn(&str) -> Option<String>) -> Option<LaunchedSize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", SLURM_STEP_TASKS].into_iter().find_map(|variable| {
        let processes = env(variable)?.trim().parse().ok()?;
        Some(LaunchedSize { processes, variable })
    })
}

/// This process's rank as its launcher set it in the environment
/// (`OMPI_COMM_WORLD_RANK`, `PMIX_RANK`, `PMI_RANK`, or Slurm's
/// `SLURM_PROCID`), if any: for what must be decided before MPI starts,
/// such as whether to read files only rank 0 has.
pub fn launched_rank() -> Option<usize> {
    launched_rank_in(&environment)
}

/// [`launched_rank`] in the environment `env` gives.
fn launched_rank_in(env: &dyn Fn(&str) -> Option<String>) -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"]
        .into_iter()
        .find_map(|name| env(name)?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of the given variables only.
    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
    }

    #[test]
    fn an_srun_step_of_several_tasks_is_launched_whatever_its_mpi_plugin() {
        // `srun --mpi=none -n 3`: no MPI variable, yet three tasks.
        let none = env(&[("SLURM_STEP_NUM_TASKS", "3"), ("SLURM_NTASKS", "3"), ("SLURM_PROCID", "2")]);
        assert_eq!(launcher_in(&none), Some("SLURM_STEP_NUM_TASKS"));
        assert_eq!(launched_size_in(&none), Some(LaunchedSize { processes: 3, variable: "SLURM_STEP_NUM_TASKS" }));
        assert_eq!(launched_rank_in(&none), Some(2));
        // `srun --mpi=pmix -n 3`: the MPI variable names the launcher.
        let pmix = env(&[("SLURM_STEP_NUM_TASKS", "3"), ("PMIX_RANK", "1"), ("SLURM_PROCID", "1")]);
        assert_eq!(launcher_in(&pmix), Some("PMIX_RANK"));
        assert_eq!(launched_rank_in(&pmix), Some(1));
    }

    #[test]
    fn one_process_of_a_batch_script_or_a_one_task_step_is_not_launched() {
        // `#SBATCH -n 4` and the script runs wasmpool itself: SLURM_NTASKS
        // says 4, but no job step started this process.
        let batch = env(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "0"), ("SLURM_JOB_ID", "12")]);
        assert_eq!(launcher_in(&batch), None);
        assert_eq!(launched_size_in(&batch), None);
        let one = env(&[("SLURM_STEP_NUM_TASKS", "1")]);
        assert_eq!(launcher_in(&one), None);
        assert_eq!(launched_size_in(&one).map(|launched| launched.processes), Some(1));
        assert_eq!(launcher_in(&env(&[])), None);
    }

    #[test]
    fn wasmpool_cluster_off_runs_each_task_on_its_own() {
        let farm = env(&[("SLURM_STEP_NUM_TASKS", "4"), ("SLURM_PROCID", "3"), ("WASMPOOL_CLUSTER", "off")]);
        assert_eq!(launcher_in(&farm), None);
        assert_eq!(launcher_in(&env(&[("SLURM_STEP_NUM_TASKS", "4"), ("WASMPOOL_CLUSTER", "OFF")])), None);
        // Under an MPI launcher the ranks form one job whatever it says.
        let mpirun = env(&[("OMPI_COMM_WORLD_SIZE", "4"), ("WASMPOOL_CLUSTER", "off")]);
        assert_eq!(launcher_in(&mpirun), Some("OMPI_COMM_WORLD_SIZE"));
        let pmix = env(&[("SLURM_STEP_NUM_TASKS", "4"), ("PMIX_RANK", "1"), ("WASMPOOL_CLUSTER", "off")]);
        assert_eq!(launcher_in(&pmix), Some("PMIX_RANK"));
    }

    #[test]
    fn a_pmi_count_comes_before_slurm_s_which_may_count_proxies() {
        // Hydra under Slurm: one proxy task per node, four ranks.
        let hydra = env(&[("SLURM_STEP_NUM_TASKS", "1"), ("PMI_SIZE", "4"), ("PMI_RANK", "2")]);
        assert_eq!(launched_size_in(&hydra), Some(LaunchedSize { processes: 4, variable: "PMI_SIZE" }));
        assert_eq!(launched_rank_in(&hydra), Some(2));
    }

    #[test]
    fn mpirun_s_own_count_comes_before_slurm_s() {
        // mpirun inside a one-task srun step: its ranks are its own count.
        let nested =
            env(&[("SLURM_STEP_NUM_TASKS", "1"), ("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "3")]);
        assert_eq!(launched_size_in(&nested), Some(LaunchedSize { processes: 4, variable: "OMPI_COMM_WORLD_SIZE" }));
        assert_eq!(launched_rank_in(&nested), Some(3));
        // A value that is not a number is not believed.
        assert_eq!(launched_size_in(&env(&[("SLURM_STEP_NUM_TASKS", "three")])), None);
    }
}
