//! Rank 0's dispatcher: a thread that takes chunks from the pool's queue
//! (beside rank 0's own workers), sends them to the other ranks in batches
//! against a window per rank, and hands their results back to the callers.

use super::link::{self, Backoff, HEARTBEAT, Sending, TAG_DOWN, TAG_UP};
use super::setup::{Cluster, RankInfo};
use super::wire::{self, Down, RankCounters, RemoteItem, RemoteJob, RemoteResult, Up};
use super::{ClusterError, DEADLINE_RETRIES, RankStats};
use crate::error::LimitExceeded;
use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use crate::worker::jobs::{CallLimits, Job, ReplyTo, TaskTarget};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Chunks out at once per worker of a rank (sent, queued there or running):
/// one running and one waiting, so a worker finds its next chunk there when
/// it finishes one, without a round trip to rank 0.
const CHUNKS_PER_WORKER: usize = 2;
/// Most bytes of arguments in one batch message.
const BATCH_BYTES: usize = 8 << 20;
/// Sends to one rank still in progress past which it gets no more work
/// until they complete.
const MAX_SENDS_PER_RANK: usize = 4;
/// Longest sleep of an idle dispatcher between polls.
const IDLE_POLL: Duration = Duration::from_millis(1);

/// Rank 0's handle on its dispatcher thread and on MPI.
pub(crate) struct Leader {
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    universe: Option<Universe>,
    remote_workers: usize,
    host: String,
}

/// What the dispatcher thread and the pool share.
#[derive(Default)]
struct Shared {
    ranks: Mutex<Vec<RankStats>>,
    lost: Mutex<Vec<ClusterError>>,
    /// Set to an exit status to end the whole job (`MPI_Abort`), from the
    /// dispatcher thread, the one that calls MPI.
    abort: AtomicI32,
}

impl Leader {
    /// Starts the dispatcher for the other `ranks`, taking jobs from `jobs`.
    pub(crate) fn start(cluster: Cluster, ranks: Vec<RankInfo>, jobs: Receiver<Job>) -> std::io::Result<Leader> {
        let shared = Arc::new(Shared::default());
        let remote_workers = ranks.iter().map(|r| r.workers).sum();
        *shared.ranks.lock().unwrap_or_else(PoisonError::into_inner) = ranks
            .iter()
            .map(|r| RankStats {
                rank: r.rank,
                host: r.host.clone(),
                workers: r.workers,
                tasks: 0,
                busy: Duration::ZERO,
                retries: 0,
                deadline_retries: 0,
            })
            .collect();
        let timeout = cluster.rank_timeout;
        let host = cluster.host().to_owned();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new().name("wasmpool-cluster".into()).spawn(move || {
            let world = SimpleCommunicator::world();
            Dispatcher::new(world, ranks, jobs, timeout, thread_shared).run();
        })?;
        Ok(Leader { thread: Some(thread), shared, universe: Some(cluster.universe), remote_workers, host })
    }

    /// Workers on the other ranks.
    pub(crate) fn remote_workers(&self) -> usize {
        self.remote_workers
    }

    /// Rank 0's host name.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// What each other rank has done, as last heard.
    pub(crate) fn ranks(&self) -> Vec<RankStats> {
        self.shared.ranks.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The ranks lost so far.
    pub(crate) fn lost(&self) -> Vec<ClusterError> {
        self.shared.lost.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Ends the whole MPI job with exit status `code` (`MPI_Abort`, called
    /// by the dispatcher thread); never returns.
    pub(crate) fn abort(&self, code: i32) -> ! {
        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            // No dispatcher calls MPI any more: this thread may.
            mpi::topology::Communicator::abort(&SimpleCommunicator::world(), code);
        }
        self.shared.abort.store(code.max(1), Ordering::SeqCst);
        // The dispatcher polls at least every millisecond; if it is gone,
        // this process ends on its own (mpirun then ends the others).
        std::thread::sleep(Duration::from_secs(5));
        std::process::exit(code)
    }

    /// Waits for the dispatcher to finish (the pool's queue is closed by
    /// now), then finalises MPI, unless a rank was lost: finalising would
    /// wait for it forever, so MPI is left for the process's end.
    pub(crate) fn close(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(universe) = self.universe.take() {
            if self.lost().is_empty() {
                drop(universe);
            } else {
                tracing::warn!("a rank was lost: MPI is not finalised");
                std::mem::forget(universe);
            }
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.close();
    }
}

/// Another rank, as the dispatcher tracks it.
struct Rank {
    info: RankInfo,
    /// Most jobs out at once.
    window: usize,
    /// Jobs sent and not yet answered.
    out: usize,
    sending: Vec<Sending>,
    last_heard: Instant,
    last_sent: Instant,
    counters: RankCounters,
    deadline_retries: u64,
    lost: bool,
}

impl Rank {
    fn credit(&self) -> usize {
        if self.lost || self.sending.len() >= MAX_SENDS_PER_RANK { 0 } else { self.window.saturating_sub(self.out) }
    }
}

/// A job taken from the pool's queue, until all its inputs are answered.
struct Flight {
    task: Arc<TaskTarget>,
    limits: CallLimits,
    reply: Option<ReplyTo>,
    items: Vec<(usize, Result<Vec<u8>, TaskFailure>)>,
    outcomes: Vec<Option<Outcome>>,
    tries: Vec<u32>,
    left: usize,
}

/// What one message to a rank carried of a flight.
struct Part {
    flight: u64,
    positions: Vec<usize>,
    rank: usize,
}

/// An input to run again elsewhere: its flight, position and the rank
/// where it failed.
struct Retry {
    flight: u64,
    position: usize,
    failed_on: usize,
}

struct Dispatcher {
    world: SimpleCommunicator,
    jobs: Receiver<Job>,
    /// A job taken while waiting, not yet sent.
    held: Option<Job>,
    closed: bool,
    ranks: Vec<Rank>,
    flights: HashMap<u64, Flight>,
    parts: HashMap<u64, Part>,
    retries: VecDeque<Retry>,
    next_id: u64,
    /// Where the next round of dispatch starts, so that every rank gets
    /// its turn at the head of the queue.
    next_rank: usize,
    timeout: Duration,
    shared: Arc<Shared>,
}

impl Dispatcher {
    fn new(
        world: SimpleCommunicator,
        infos: Vec<RankInfo>,
        jobs: Receiver<Job>,
        timeout: Duration,
        shared: Arc<Shared>,
    ) -> Self {
        let now = Instant::now();
        let ranks = infos
            .into_iter()
            .map(|info| Rank {
                window: (info.workers * CHUNKS_PER_WORKER).max(CHUNKS_PER_WORKER),
                info,
                out: 0,
                sending: Vec::new(),
                last_heard: now,
                last_sent: now,
                counters: RankCounters::default(),
                deadline_retries: 0,
                lost: false,
            })
            .collect();
        Dispatcher {
            world,
            jobs,
            held: None,
            closed: false,
            ranks,
            flights: HashMap::new(),
            parts: HashMap::new(),
            retries: VecDeque::new(),
            next_id: 0,
            next_rank: 0,
            timeout,
            shared,
        }
    }

    fn run(mut self) {
        let mut backoff = Backoff::new(IDLE_POLL);
        loop {
            let code = self.shared.abort.load(Ordering::SeqCst);
            if code != 0 {
                mpi::topology::Communicator::abort(&self.world, code);
            }
            let mut active = self.receive();
            for rank in &mut self.ranks {
                rank.sending.retain_mut(|s| !s.done());
            }
            active |= self.dispatch();
            self.check_silence();
            self.ping();
            if self.ranks.iter().all(|r| r.lost) {
                // Nobody left to send to: rank 0's own workers serve the
                // queue from now on.
                self.give_up();
                break;
            }
            if self.closed && self.held.is_none() && self.flights.is_empty() {
                break;
            }
            if active {
                backoff.reset();
            } else {
                self.wait(backoff.next());
            }
        }
        self.close_ranks();
        self.publish();
    }

    /// Takes every message that has arrived; whether there was any.
    fn receive(&mut self) -> bool {
        let mut any = false;
        while let Some((from, bytes)) = link::try_receive(&self.world, None, TAG_UP) {
            any = true;
            let Some(slot) = from.checked_sub(1).filter(|&i| i < self.ranks.len()) else { continue };
            if self.ranks[slot].lost {
                continue;
            }
            self.ranks[slot].last_heard = Instant::now();
            match wire::decode::<Up>(&bytes) {
                Ok(Up::Alive(counters)) => self.ranks[slot].counters = counters,
                Ok(Up::Results(results, counters)) => {
                    self.ranks[slot].counters = counters;
                    for result in results {
                        if let Err(reason) = self.finish(slot, result) {
                            self.lose(slot, |rank, host| ClusterError::Protocol { rank, host, reason });
                            break;
                        }
                    }
                }
                Err(reason) => self.lose(slot, |rank, host| ClusterError::Protocol { rank, host, reason }),
            }
        }
        if any {
            self.publish();
        }
        any
    }

    /// Files the results of one message's part of a flight.
    fn finish(&mut self, slot: usize, result: RemoteResult) -> Result<(), String> {
        // A part stays filed until its results are known good: if they are
        // not, losing the rank that holds it answers its inputs.
        let Some(part) = self.parts.get(&result.id) else {
            return Err(format!("results for job {} it was not sent", result.id));
        };
        if part.rank != slot {
            return Err(format!("results for job {} that another rank holds", result.id));
        }
        if result.outcomes.len() != part.positions.len() {
            return Err(format!(
                "{} results for job {} of {} inputs",
                result.outcomes.len(),
                result.id,
                part.positions.len()
            ));
        }
        let Some(part) = self.parts.remove(&result.id) else { return Ok(()) };
        self.ranks[slot].out = self.ranks[slot].out.saturating_sub(1);
        let Some(flight) = self.flights.get_mut(&part.flight) else { return Ok(()) };
        for (position, outcome) in part.positions.into_iter().zip(result.outcomes) {
            let stalled = matches!(outcome.result, Err(TaskFailure::Limit(LimitExceeded::Deadline { .. })));
            if stalled && flight.tries[position] < DEADLINE_RETRIES {
                flight.tries[position] += 1;
                self.ranks[slot].deadline_retries += 1;
                self.retries.push_back(Retry { flight: part.flight, position, failed_on: slot });
                continue;
            }
            if flight.outcomes[position].replace(outcome).is_none() {
                flight.left -= 1;
            }
        }
        self.land(part.flight);
        Ok(())
    }

    /// Replies for a flight whose inputs are all answered.
    fn land(&mut self, id: u64) {
        if self.flights.get(&id).is_some_and(|f| f.left == 0) {
            let Some(mut flight) = self.flights.remove(&id) else { return };
            let results = flight
                .items
                .iter()
                .zip(flight.outcomes)
                .map(|((index, _), outcome)| {
                    (*index, outcome.unwrap_or_else(|| Outcome::bare(Err(TaskFailure::PoolClosed))))
                })
                .collect();
            if let Some(reply) = flight.reply.take() {
                reply.send(results);
            }
        }
    }

    /// Sends work to every rank with room for it; whether any was sent.
    fn dispatch(&mut self) -> bool {
        let mut sent = false;
        let count = self.ranks.len();
        for step in 0..count {
            let slot = (self.next_rank + step) % count;
            let mut credit = self.ranks[slot].credit();
            if credit == 0 {
                continue;
            }
            let mut batch = Vec::new();
            let mut bytes = 0;
            // Inputs to run again come first, on a rank other than where they stalled.
            let mut kept = VecDeque::new();
            while credit > 0 && bytes < BATCH_BYTES {
                let Some(retry) = self.retries.pop_front() else { break };
                let elsewhere = self.ranks.iter().filter(|r| !r.lost).count() > 1;
                if elsewhere && retry.failed_on == slot {
                    kept.push_back(retry);
                    continue;
                }
                if let Some(job) = self.retry_job(&retry, slot) {
                    bytes += job.arg_bytes();
                    batch.push(job);
                    credit -= 1;
                }
            }
            kept.extend(self.retries.drain(..));
            self.retries = kept;
            while credit > 0 && bytes < BATCH_BYTES {
                // Past one chunk per worker, a rank gets more only while
                // others wait behind it: at the tail of a map the last
                // chunks stay in the queue for whichever worker frees first,
                // rather than wait behind a running chunk on one rank.
                let rank = &self.ranks[slot];
                if rank.out >= rank.info.workers && self.held.is_none() && self.jobs.len() <= 1 {
                    break;
                }
                let job = match self.held.take() {
                    Some(job) => job,
                    None => match self.jobs.try_recv() {
                        Ok(job) => job,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            self.closed = true;
                            break;
                        }
                    },
                };
                if job.is_cancelled() {
                    let indices: Vec<usize> = job.items.iter().map(|i| i.index).collect();
                    job.reply.abandon(Vec::new(), indices.into_iter());
                    continue;
                }
                let remote = self.take_flight(job, slot);
                bytes += remote.arg_bytes();
                batch.push(remote);
                credit -= 1;
            }
            if !batch.is_empty() {
                self.send(slot, &Down::Batch(batch));
                sent = true;
            }
        }
        self.next_rank = (self.next_rank + 1) % count.max(1);
        sent
    }

    /// Files a job from the queue as a flight, all of it for `slot`.
    fn take_flight(&mut self, job: Job, slot: usize) -> RemoteJob {
        let id = self.new_id();
        let Job { task, items, reply, limits, .. } = job;
        let remote = remote_job(id, &task, limits, items.iter().map(|item| (item.index, &item.args)));
        let count = items.len();
        self.parts.insert(id, Part { flight: id, positions: (0..count).collect(), rank: slot });
        self.flights.insert(
            id,
            Flight {
                task,
                limits,
                reply: Some(reply),
                items: items.into_iter().map(|item| (item.index, item.args)).collect(),
                outcomes: vec![None; count],
                tries: vec![0; count],
                left: count,
            },
        );
        self.ranks[slot].out += 1;
        remote
    }

    /// A job of one input to run again, on `slot`.
    fn retry_job(&mut self, retry: &Retry, slot: usize) -> Option<RemoteJob> {
        let id = self.new_id();
        let flight = self.flights.get(&retry.flight)?;
        let (index, args) = flight.items.get(retry.position)?;
        let remote = remote_job(id, &flight.task, flight.limits, std::iter::once((*index, args)));
        self.parts.insert(id, Part { flight: retry.flight, positions: vec![retry.position], rank: slot });
        self.ranks[slot].out += 1;
        Some(remote)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, slot: usize, message: &Down) {
        match wire::encode(message) {
            Ok(bytes) => {
                let rank = &mut self.ranks[slot];
                rank.sending.push(Sending::start(&self.world, link::mpi_rank(rank.info.rank), TAG_DOWN, bytes));
                rank.last_sent = Instant::now();
            }
            Err(reason) => self.lose(slot, |rank, host| ClusterError::Protocol { rank, host, reason }),
        }
    }

    /// Pings every rank not sent anything for a heartbeat's time.
    fn ping(&mut self) {
        for slot in 0..self.ranks.len() {
            let rank = &self.ranks[slot];
            if !rank.lost && rank.sending.is_empty() && rank.last_sent.elapsed() >= HEARTBEAT {
                self.send(slot, &Down::Ping);
            }
        }
    }

    fn check_silence(&mut self) {
        for slot in 0..self.ranks.len() {
            // Whole milliseconds, for messages.
            let after = Duration::from_millis(self.ranks[slot].last_heard.elapsed().as_millis() as u64);
            if !self.ranks[slot].lost && after > self.timeout {
                self.lose(slot, |rank, host| ClusterError::Silent { rank, host, after });
            }
        }
    }

    /// Gives up on a rank: every input it held fails with `RankLost`, and
    /// it gets no more work.
    fn lose(&mut self, slot: usize, error: impl FnOnce(usize, String) -> ClusterError) {
        let rank = &mut self.ranks[slot];
        if rank.lost {
            return;
        }
        rank.lost = true;
        let error = error(rank.info.rank, rank.info.host.clone());
        tracing::error!(%error, "rank lost");
        let reason = match &error {
            ClusterError::Silent { after, .. } => format!("nothing heard from it for {after:?}"),
            ClusterError::Protocol { reason, .. } => format!("it broke the cluster protocol: {reason}"),
            other => other.to_string(),
        };
        let failure = TaskFailure::RankLost { rank: rank.info.rank, host: rank.info.host.clone(), reason };
        self.shared.lost.lock().unwrap_or_else(PoisonError::into_inner).push(error);
        let held: Vec<u64> = self.parts.iter().filter(|(_, p)| p.rank == slot).map(|(id, _)| *id).collect();
        let mut touched = Vec::new();
        for id in held {
            let Some(part) = self.parts.remove(&id) else { continue };
            if let Some(flight) = self.flights.get_mut(&part.flight) {
                for position in part.positions {
                    if flight.outcomes[position].replace(Outcome::bare(Err(failure.clone()))).is_none() {
                        flight.left -= 1;
                    }
                }
            }
            touched.push(part.flight);
        }
        for flight in touched {
            self.land(flight);
        }
        self.ranks[slot].out = 0;
    }

    /// With every other rank lost: answers the inputs waiting to run again
    /// (their deadline failure stands) and the job taken but not sent.
    fn give_up(&mut self) {
        while let Some(retry) = self.retries.pop_front() {
            if let Some(flight) = self.flights.get_mut(&retry.flight) {
                let stalled = Outcome::bare(Err(TaskFailure::Limit(LimitExceeded::Deadline {
                    limit: flight.limits.deadline.unwrap_or_default(),
                })));
                if flight.outcomes[retry.position].replace(stalled).is_none() {
                    flight.left -= 1;
                }
                self.land(retry.flight);
            }
        }
        if let Some(job) = self.held.take() {
            let failure = match self.ranks.last() {
                Some(rank) => TaskFailure::RankLost {
                    rank: rank.info.rank,
                    host: rank.info.host.clone(),
                    reason: "every other rank was lost before this input was sent".into(),
                },
                None => TaskFailure::PoolClosed,
            };
            let failed = job.items.iter().map(|i| (i.index, Outcome::bare(Err(failure.clone())))).collect();
            job.reply.send(failed);
        }
    }

    /// Waits a little for a job (if any rank has room) or a message.
    fn wait(&mut self, pause: Duration) {
        let room = self.ranks.iter().any(|r| r.credit() > 0);
        if room && self.held.is_none() && !self.closed {
            match self.jobs.recv_timeout(pause) {
                Ok(job) => self.held = Some(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
            }
        } else {
            std::thread::sleep(pause);
        }
    }

    /// Tells every rank still there to stop.
    fn close_ranks(&mut self) {
        let Ok(bytes) = wire::encode(&Down::Close) else { return };
        for rank in &mut self.ranks {
            if rank.lost {
                continue;
            }
            link::finish_sends(&mut rank.sending, self.timeout);
            link::send_within(&self.world, link::mpi_rank(rank.info.rank), TAG_DOWN, bytes.clone(), self.timeout);
        }
    }

    /// Makes the ranks' counters visible to `Pool::cluster_stats`.
    fn publish(&self) {
        let stats = self
            .ranks
            .iter()
            .map(|r| RankStats {
                rank: r.info.rank,
                host: r.info.host.clone(),
                workers: r.info.workers,
                tasks: r.counters.tasks,
                busy: r.counters.busy,
                retries: r.counters.retries,
                deadline_retries: r.deadline_retries,
            })
            .collect();
        *self.shared.ranks.lock().unwrap_or_else(PoisonError::into_inner) = stats;
    }
}

/// The message form of inputs of `task` under `limits`, numbered `id`.
fn remote_job<'a>(
    id: u64,
    task: &TaskTarget,
    limits: CallLimits,
    items: impl Iterator<Item = (usize, &'a Result<Vec<u8>, TaskFailure>)>,
) -> RemoteJob {
    RemoteJob {
        id,
        task: task.name.clone(),
        export: task.export.clone(),
        seed_key: task.seed_key,
        deadline: limits.deadline,
        fuel: limits.fuel,
        items: items
            .map(|(index, args)| RemoteItem { index: index as u64, args: args.clone().map(serde_bytes::ByteBuf::from) })
            .collect(),
    }
}
