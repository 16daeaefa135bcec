//! Joining an MPI job, and the set-up every rank goes through before any
//! task runs: the module's bytes and the settings from rank 0, each rank's
//! pool, engine and settings back, and rank 0's verdict.

use super::fault::{self, Fault};
use super::link::{self, Received as Arrived, TAG_SETUP};
use super::policy::{self, Agreement, Answer, Answers, MessageBounds, RankInfo};
use super::wire::{self, CLUSTER_PROTOCOL, Go, Joined, JoinedPool, Setup};
use super::{ClusterError, DEFAULT_RANK_TIMEOUT, LaunchedSize, check_launch, launched_size, launcher};
use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

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
        // An srun step of several tasks with no MPI plugin (`--mpi=none`):
        // MPI would abort, with a message about how it was built, or start
        // each task alone.
        check_launch()?;
        // Read before MPI starts, which may set the variables to its own view.
        let launched = launched_size();
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
        if let Some(LaunchedSize { processes, variable }) = launched
            && processes > 1
            && size == 1
        {
            return Err(ClusterError::AloneInWorld { processes, variable });
        }
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

/// Rank 0's side of set-up, step one: broadcasts the module and settings.
/// Every rank first learns their size and says whether it accepts it
/// ([`all_accept`]); if one does not, nothing more is broadcast, and that
/// rank says why in its answer ([`report`]).
pub(crate) fn lead(cluster: &Cluster, module: &[u8], origin: &str, seed: u64) -> Result<(), ClusterError> {
    let setup = Setup {
        protocol: CLUSTER_PROTOCOL,
        module: module.to_vec(),
        sha256: Sha256::digest(module).into(),
        origin: policy::fit(origin, policy::ORIGIN_BYTES).to_owned(),
        seed,
    };
    let mut bytes = wire::encode(&setup).map_err(ClusterError::Init)?;
    let world = cluster.world();
    let root = world.process_at_rank(0);
    let mut len = bytes.len() as u64;
    root.broadcast_into(&mut len);
    if all_accept(&world, true) {
        root.broadcast_into(&mut bytes[..]);
    }
    Ok(())
}

/// Every rank says whether it accepts what rank 0 is about to broadcast;
/// whether every rank does. Collective: every rank calls it once, between
/// the broadcast of the set-up's size and that of its bytes, so that a rank
/// refusing the size need not receive them and nobody waits for it.
fn all_accept(world: &SimpleCommunicator, accepts: bool) -> bool {
    let refused = u32::from(!accepts);
    let mut any = 0u32;
    world.all_reduce_into(&refused, &mut any, SystemOperation::max());
    any == 0
}

/// What a rank answers when another rank refused rank 0's set-up: it has
/// no module, through no fault of its own (rank 0 names the rank that
/// refused rather than this one).
pub(crate) const NOTHING_RECEIVED: &str = "it received no module: another rank refused rank 0's set-up";

/// Rank 0's side of set-up, step two, once its own pool is built (`built`:
/// its engine's hash) or not (`built` is then why): gathers one answer
/// from every other rank, checks each against its own engine and
/// `agreement`, and tells every rank to serve or stop.
///
/// Answers are counted by rank: a rank answering twice is refused (it
/// broke the protocol) and cannot stand in for one that did not answer.
/// Each answer is sized before it is received, against what an answer
/// that agrees with rank 0's could be ([`MessageBounds::joined`]).
pub(crate) fn gather(
    cluster: &Cluster,
    agreement: &Agreement,
    bounds: &MessageBounds,
    built: Result<u64, String>,
) -> Result<Vec<RankInfo>, ClusterError> {
    let world = cluster.world();
    let mut ranks: Vec<RankInfo> = Vec::with_capacity(cluster.size.saturating_sub(1));
    let mut refused: Option<ClusterError> = built.as_ref().err().map(|why| ClusterError::Stopped(why.clone()));
    let own = built.ok().map(|engine| (engine, agreement));
    let mut refusals: Vec<(usize, ClusterError)> = Vec::new();
    let mut answers = Answers::new(cluster.size);
    let limit = bounds.joined();
    let until = Instant::now() + SETUP_LIMIT;
    while !answers.complete() {
        let left = until.saturating_duration_since(Instant::now());
        let Some(arrived) = link::receive_within(&world, None, TAG_SETUP, left, limit) else {
            let missing: Vec<String> = answers.missing().iter().map(usize::to_string).collect();
            refused.get_or_insert(ClusterError::Stopped(format!(
                "rank(s) {} did not answer within {SETUP_LIMIT:?} of set-up",
                missing.join(", ")
            )));
            break;
        };
        let (rank, answer) = match arrived {
            Arrived::TooLarge { rank, len } => {
                (rank, Err(ClusterError::Oversized { rank, host: "?".into(), len, limit }))
            }
            Arrived::Message(rank, bytes) => match wire::decode::<Joined>(&bytes) {
                Ok(joined) => (rank, policy::check(rank, joined, own)),
                Err(reason) => (rank, Err(ClusterError::Protocol { rank, host: "?".into(), reason })),
            },
        };
        match answers.file(rank) {
            Answer::First => match answer {
                Ok(info) => ranks.push(info),
                Err(error) => refusals.push((rank, error)),
            },
            Answer::Again => {
                let host = ranks.iter().find(|r| r.rank == rank).map_or_else(|| "?".to_owned(), |r| r.host.clone());
                refusals.push((rank, ClusterError::Protocol { rank, host, reason: "it answered set-up twice".into() }));
            }
            Answer::Stranger => tracing::warn!(rank, "a set-up answer from no rank of this job, ignored"),
        }
    }
    // The lowest rank refused, whatever order the answers came in; a rank
    // that only received nothing because another refused comes last.
    refusals.sort_by_key(|(rank, error)| (is_nothing_received(error), *rank));
    if let Some((_, error)) = refusals.into_iter().next() {
        refused.get_or_insert(error);
    }
    let verdict = match &refused {
        None => Go::Serve,
        Some(error) => Go::Stop(policy::fit(&error.to_string(), policy::SETUP_TEXT_BYTES).to_owned()),
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

/// Whether a refusal is that of a rank that received no module because
/// another rank refused it.
fn is_nothing_received(error: &ClusterError) -> bool {
    matches!(error, ClusterError::Refused { reason, .. } if reason == NOTHING_RECEIVED)
}

/// What another rank receives at set-up.
pub(crate) struct Received {
    pub module: Vec<u8>,
    pub origin: String,
    pub seed: u64,
}

/// Another rank's side of set-up, step one: receives the module from
/// rank 0 and checks its hash. A set-up larger than this rank accepts
/// ([`MessageBounds::setup`]: its own compile limit on a module's size) is
/// refused before a byte of it is received or allocated.
///
/// On an error, this rank still answers rank 0 (which waits for every
/// rank's answer) with why it has no pool, and rank 0 stops the job naming
/// it: the error returned is then rank 0's verdict.
pub(crate) fn follow(cluster: &Cluster, bounds: &MessageBounds) -> Result<Received, ClusterError> {
    let error = match receive_setup(cluster, bounds) {
        Ok(received) => return Ok(received),
        Err(error) => error,
    };
    let why = match &error {
        ClusterError::Stopped(why) => why.clone(),
        other => other.to_string(),
    };
    report(cluster, bounds, Err(why))?;
    Err(error)
}

/// [`follow`] up to its first error.
fn receive_setup(cluster: &Cluster, bounds: &MessageBounds) -> Result<Received, ClusterError> {
    let world = cluster.world();
    let root = world.process_at_rank(0);
    let mut len = 0u64;
    root.broadcast_into(&mut len);
    let limit = bounds.setup();
    let size = usize::try_from(len).ok().filter(|_| len <= limit);
    if !all_accept(&world, size.is_some()) {
        return Err(match size {
            None => ClusterError::SetupTooLarge { len, limit },
            Some(_) => ClusterError::Stopped(NOTHING_RECEIVED.into()),
        });
    }
    let Some(size) = size else { return Err(ClusterError::SetupTooLarge { len, limit }) };
    let mut bytes = vec![0u8; size];
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
/// has none) and waits for rank 0's verdict, itself sized before it is
/// received ([`MessageBounds::go`]).
pub(crate) fn report(
    cluster: &Cluster,
    bounds: &MessageBounds,
    pool: Result<JoinedPool, String>,
) -> Result<(), ClusterError> {
    let world = cluster.world();
    // Texts are cut to what rank 0 accepts of them.
    let pool = pool.map_err(|why| policy::fit(&why, policy::SETUP_TEXT_BYTES).to_owned());
    let host = policy::fit(&cluster.host, policy::HOST_BYTES).to_owned();
    let joined = Joined { protocol: CLUSTER_PROTOCOL, host, pool };
    let bytes = wire::encode(&joined).map_err(ClusterError::Init)?;
    if fault::asked(cluster.rank, Fault::AnswerLate) {
        std::thread::sleep(Duration::from_secs(2));
    }
    if fault::asked(cluster.rank, Fault::AnswerTwice) {
        link::send_within(&world, 0, TAG_SETUP, bytes.clone(), SETUP_LIMIT);
    }
    if !link::send_within(&world, 0, TAG_SETUP, bytes, SETUP_LIMIT) {
        return Err(ClusterError::Stopped("rank 0 did not take this rank's answer at set-up".into()));
    }
    let limit = bounds.go();
    match link::receive_within(&world, Some(0), TAG_SETUP, SETUP_LIMIT, limit) {
        None => Err(ClusterError::Stopped("rank 0 gave no verdict at set-up".into())),
        Some(Arrived::TooLarge { len, .. }) => {
            Err(ClusterError::Oversized { rank: 0, host: "rank 0".into(), len, limit })
        }
        Some(Arrived::Message(_, bytes)) => match wire::decode::<Go>(&bytes) {
            Ok(Go::Serve) => Ok(()),
            Ok(Go::Stop(why)) => Err(ClusterError::Stopped(why)),
            Err(reason) => Err(ClusterError::Protocol { rank: 0, host: "rank 0".into(), reason }),
        },
    }
}
