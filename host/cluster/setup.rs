//! Joining an MPI job, and the set-up every rank goes through before any
//! task runs: the module's bytes and the settings from rank 0, each rank's
//! pool, engine and settings back, and rank 0's verdict.

use super::link::{self, TAG_SETUP};
use super::wire::{self, CLUSTER_PROTOCOL, Go, Joined, JoinedPool, Setup};
use super::{ClusterError, DEFAULT_RANK_TIMEOUT, launcher};
use mpi::Threading;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::Root;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long set-up may take on a rank: receiving the module, compiling it
/// (minutes for a large module on a slow node) and running its load code.
const SETUP_LIMIT: Duration = Duration::from_secs(600);

/// This process's place in an MPI job; give it to
/// [`PoolBuilder::cluster`](crate::PoolBuilder::cluster).
///
/// Holds MPI: it is initialised by [`join`](Cluster::join) and finalised
/// when the pool built with it is dropped (or when the `Cluster` is, if no
/// pool was).
pub struct Cluster {
    pub(crate) universe: Universe,
    rank: usize,
    size: usize,
    host: String,
    pub(crate) rank_timeout: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("rank", &self.rank).field("size", &self.size).field("host", &self.host).finish()
    }
}

impl Cluster {
    /// Initialises MPI and joins the job this process was launched in.
    /// Fails with [`ClusterError::NotLaunched`] outside `mpirun` or
    /// `srun`, rather than start a one-rank job nobody asked for.
    pub fn join() -> Result<Cluster, ClusterError> {
        if launcher().is_none() {
            return Err(ClusterError::NotLaunched);
        }
        // One thread calls MPI at a time: the caller's during set-up, rank
        // 0's dispatcher thread after it.
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| ClusterError::Init("MPI is already initialised in this process".into()))?;
        if matches!(threading, Threading::Single | Threading::Funneled) {
            return Err(ClusterError::Init(format!(
                "the MPI library offers only thread level {threading:?}; wasmpool calls MPI from one thread at a \
                 time but not always the same one, which needs Serialized"
            )));
        }
        let world = universe.world();
        let rank = usize::try_from(world.rank()).map_err(|_| ClusterError::Init("a negative rank".into()))?;
        let size = link::size(&world);
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
        Ok(Cluster { universe, rank, size, host, rank_timeout: DEFAULT_RANK_TIMEOUT })
    }

    /// This process's rank; rank 0 holds the pool.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The machine this rank runs on, as MPI names it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether this is rank 0, the one that holds the pool.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// How long a rank may stay silent before it is counted as lost
    /// (default [`DEFAULT_RANK_TIMEOUT`]); the other ranks give rank 0 as
    /// long. Healthy ranks are heard from every second.
    pub fn rank_timeout(mut self, timeout: Duration) -> Self {
        self.rank_timeout = timeout.max(Duration::from_secs(2));
        self
    }

    pub(crate) fn world(&self) -> SimpleCommunicator {
        self.universe.world()
    }
}

/// Another rank as rank 0 knows it after set-up.
#[derive(Debug, Clone)]
pub(crate) struct RankInfo {
    pub rank: usize,
    pub host: String,
    pub workers: usize,
}

/// Rank 0's side of set-up, step one: broadcasts the module and settings.
pub(crate) fn lead(cluster: &Cluster, module: &[u8], origin: &str, seed: u64) -> Result<(), ClusterError> {
    let setup = Setup {
        protocol: CLUSTER_PROTOCOL,
        module: module.to_vec(),
        sha256: Sha256::digest(module).into(),
        origin: origin.to_owned(),
        seed,
    };
    let bytes = wire::encode(&setup).map_err(ClusterError::Init)?;
    let world = cluster.world();
    let root = world.process_at_rank(0);
    let mut len = bytes.len() as u64;
    root.broadcast_into(&mut len);
    let mut bytes = bytes;
    root.broadcast_into(&mut bytes[..]);
    Ok(())
}

/// Rank 0's side of set-up, step two, once its own pool is built (or not:
/// `own` is then why): gathers every rank's answer, checks it against its
/// own engine and settings, and tells every rank to serve or stop.
pub(crate) fn gather(cluster: &Cluster, own: Result<(u64, &str), String>) -> Result<Vec<RankInfo>, ClusterError> {
    let world = cluster.world();
    let mut ranks = Vec::with_capacity(cluster.size.saturating_sub(1));
    let mut refused: Option<ClusterError> = own.as_ref().err().map(|why| ClusterError::Stopped(why.clone()));
    let mut refusals = Vec::new();
    for _ in 1..cluster.size {
        let Some((rank, bytes)) = link::receive_within(&world, None, TAG_SETUP, SETUP_LIMIT) else {
            refused.get_or_insert(ClusterError::Stopped(format!(
                "not every rank answered within {SETUP_LIMIT:?} of set-up"
            )));
            break;
        };
        let answer = match wire::decode::<Joined>(&bytes) {
            Ok(joined) => check(rank, joined, own.as_ref().ok().copied()),
            Err(reason) => Err(ClusterError::Protocol { rank, host: "?".into(), reason }),
        };
        match answer {
            Ok(info) => ranks.push(info),
            Err(error) => refusals.push((rank, error)),
        }
    }
    // The lowest rank refused, whatever order the answers came in.
    refusals.sort_by_key(|(rank, _)| *rank);
    if let Some((_, error)) = refusals.into_iter().next() {
        refused.get_or_insert(error);
    }
    let verdict = match &refused {
        None => Go::Serve,
        Some(error) => Go::Stop(error.to_string()),
    };
    let bytes = wire::encode(&verdict).map_err(ClusterError::Init)?;
    for rank in 1..cluster.size {
        link::send_within(&world, link::mpi_rank(rank), TAG_SETUP, bytes.clone(), Duration::from_secs(10));
    }
    match refused {
        Some(error) => Err(error),
        None => {
            ranks.sort_by_key(|r| r.rank);
            Ok(ranks)
        }
    }
}

/// One rank's answer, checked against rank 0's engine hash and settings.
fn check(rank: usize, joined: Joined, own: Option<(u64, &str)>) -> Result<RankInfo, ClusterError> {
    let host = joined.host;
    let refuse = |reason: String| ClusterError::Refused { rank, host: host.clone(), reason };
    if joined.protocol != CLUSTER_PROTOCOL {
        return Err(refuse(format!(
            "it speaks cluster protocol {}, rank 0 speaks {CLUSTER_PROTOCOL}: run the same wasmpool on every node",
            joined.protocol
        )));
    }
    let pool = joined.pool.map_err(&refuse)?;
    let Some((engine, settings)) = own else {
        return Ok(RankInfo { rank, host, workers: pool.workers as usize });
    };
    if pool.engine != engine {
        return Err(refuse(
            "its Wasm engine compiles code differently from rank 0's (another wasmtime version, other engine \
             settings, or CPU features that change compiled code): its results could differ"
                .into(),
        ));
    }
    if pool.settings != settings {
        let (theirs, ours) = difference(&pool.settings, settings);
        return Err(refuse(format!(
            "it was started with other pool settings than rank 0: {theirs} against rank 0's {ours}"
        )));
    }
    Ok(RankInfo { rank, host, workers: pool.workers as usize })
}

/// Where two settings texts differ: the differing middle of each, from
/// the start of the field where they part (at a `, ` or `{ `).
fn difference<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let mut start = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while start > 0
        && !(a.is_char_boundary(start) && matches!(&a[..start], p if p.ends_with(", ") || p.ends_with("{ ")))
    {
        start -= 1;
    }
    let tail = a[start..].bytes().rev().zip(b[start..].bytes().rev()).take_while(|(x, y)| x == y).count();
    let (mut end_a, mut end_b) = (a.len() - tail, b.len() - tail);
    while !a.is_char_boundary(end_a) || !b.is_char_boundary(end_b) {
        end_a += 1;
        end_b += 1;
    }
    let field_end = |text: &'a str, end: usize| {
        let rest = &text[end..];
        end + rest.find([',', ' ', '}']).unwrap_or(rest.len())
    };
    (&a[start..field_end(a, end_a)], &b[start..field_end(b, end_b)])
}

/// What another rank receives at set-up.
pub(crate) struct Received {
    pub module: Vec<u8>,
    pub origin: String,
    pub seed: u64,
}

/// Another rank's side of set-up, step one: receives the module from
/// rank 0 and checks its hash.
pub(crate) fn follow(cluster: &Cluster) -> Result<Received, ClusterError> {
    let world = cluster.world();
    let root = world.process_at_rank(0);
    let mut len = 0u64;
    root.broadcast_into(&mut len);
    let len = usize::try_from(len).map_err(|_| ClusterError::Init("the module does not fit this rank".into()))?;
    let mut bytes = vec![0u8; len];
    root.broadcast_into(&mut bytes[..]);
    let setup: Setup =
        wire::decode(&bytes).map_err(|reason| ClusterError::Protocol { rank: 0, host: "rank 0".into(), reason })?;
    if setup.protocol != CLUSTER_PROTOCOL {
        return Err(ClusterError::Init(format!(
            "rank 0 speaks cluster protocol {}, this rank {CLUSTER_PROTOCOL}: run the same wasmpool on every node",
            setup.protocol
        )));
    }
    let digest: [u8; 32] = Sha256::digest(&setup.module).into();
    if digest != setup.sha256 {
        return Err(ClusterError::Init(
            "the module's bytes arrived damaged: their SHA-256 differs from rank 0's".into(),
        ));
    }
    Ok(Received { module: setup.module, origin: setup.origin, seed: setup.seed })
}

/// Another rank's side of set-up, step two: reports its pool (or why it
/// has none) and waits for rank 0's verdict.
pub(crate) fn report(cluster: &Cluster, pool: Result<JoinedPool, String>) -> Result<(), ClusterError> {
    let world = cluster.world();
    let joined = Joined { protocol: CLUSTER_PROTOCOL, host: cluster.host.clone(), pool };
    let bytes = wire::encode(&joined).map_err(ClusterError::Init)?;
    if !link::send_within(&world, 0, TAG_SETUP, bytes, SETUP_LIMIT) {
        return Err(ClusterError::Stopped("rank 0 did not take this rank's answer at set-up".into()));
    }
    let Some((_, bytes)) = link::receive_within(&world, Some(0), TAG_SETUP, SETUP_LIMIT) else {
        return Err(ClusterError::Stopped("rank 0 gave no verdict at set-up".into()));
    };
    match wire::decode::<Go>(&bytes) {
        Ok(Go::Serve) => Ok(()),
        Ok(Go::Stop(why)) => Err(ClusterError::Stopped(why)),
        Err(reason) => Err(ClusterError::Protocol { rank: 0, host: "rank 0".into(), reason }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_differences_name_the_field() {
        let a = "limits Limits { deadline: None, max_memory: 33554432, max_stack: 1 }, mode A";
        let b = "limits Limits { deadline: None, max_memory: 268435456, max_stack: 1 }, mode A";
        assert_eq!(super::difference(a, b), ("max_memory: 33554432", "max_memory: 268435456"));
        assert_eq!(super::difference("mode A", "mode B"), ("mode A", "mode B"));
    }
}
