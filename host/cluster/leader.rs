//! Rank 0's dispatcher: a thread that takes chunks from the pool's queue
//! (beside rank 0's own workers), sends them to the other ranks in batches
//! against a window per rank, and hands their results back to the callers.
//!
//! What another rank sends is sized before it is received: a rank may send
//! at most what the jobs it holds could return under the pool's limits
//! (`policy::MessageBounds::up`); a rank that sends more is lost. A rank is
//! lost too when it goes silent, or when it keeps answering but holds a job
//! past the time its inputs' deadlines allow (`policy::Holding::due`).

use super::link::{self, Backoff, HEARTBEAT, Received, Sending, TAG_DOWN, TAG_UP};
use super::policy::{self, BATCH_BYTES, DRAIN_BYTES, Holding, MessageBounds, PROGRESS_CHECK, RankInfo};
use super::setup::Cluster;
use super::wire::{self, Down, RankCounters, RemoteItem, RemoteJob, RemoteResult, Up};
use super::{ClusterError, DEADLINE_RETRIES, RankStats};
use crate::error::LimitExceeded;
use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use crate::transport::messages::unbelievable_outcome;
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
    /// Starts the dispatcher for the other `ranks`, taking jobs from `jobs`;
    /// what the ranks may send it is bounded by `bounds`.
    pub(crate) fn start(
        cluster: Cluster,
        ranks: Vec<RankInfo>,
        jobs: Receiver<Job>,
        bounds: MessageBounds,
    ) -> std::io::Result<Leader> {
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
            Dispatcher::new(world, ranks, jobs, timeout, bounds, thread_shared).run();
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
    /// Jobs sent and not yet answered: how many, their inputs, the time
    /// they may take.
    holding: Holding,
    sending: Vec<Sending>,
    last_heard: Instant,
    last_sent: Instant,
    counters: RankCounters,
    deadline_retries: u64,
    lost: bool,
}

impl Rank {
    /// Jobs sent and not yet answered.
    fn out(&self) -> usize {
        self.holding.jobs()
    }

    fn credit(&self) -> usize {
        if self.lost || self.sending.len() >= MAX_SENDS_PER_RANK { 0 } else { self.window.saturating_sub(self.out()) }
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
    /// When it was sent.
    sent: Instant,
    /// How long its inputs may take (`policy::allowance`).
    allowance: Option<Duration>,
    /// When a sound rank has answered it at the latest (`Holding::due`).
    due: Option<Instant>,
}

/// Inputs of a flight waiting to be sent: an input to run again elsewhere
/// (`avoid`: the rank where it failed at its deadline), or the rest of a job
/// too large for one message.
struct Pending {
    flight: u64,
    positions: Vec<usize>,
    avoid: Option<usize>,
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
    pending: VecDeque<Pending>,
    next_id: u64,
    /// Where the next round of dispatch starts, so that every rank gets
    /// its turn at the head of the queue.
    next_rank: usize,
    timeout: Duration,
    /// The largest message each rank may send, by what it holds.
    bounds: MessageBounds,
    /// When to look next for jobs held past their time.
    next_progress_check: Instant,
    shared: Arc<Shared>,
}

impl Dispatcher {
    fn new(
        world: SimpleCommunicator,
        infos: Vec<RankInfo>,
        jobs: Receiver<Job>,
        timeout: Duration,
        bounds: MessageBounds,
        shared: Arc<Shared>,
    ) -> Self {
        let now = Instant::now();
        let ranks = infos
            .into_iter()
            .map(|info| Rank {
                window: (info.workers * CHUNKS_PER_WORKER).max(CHUNKS_PER_WORKER),
                info,
                holding: Holding::default(),
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
            pending: VecDeque::new(),
            next_id: 0,
            next_rank: 0,
            timeout,
            bounds,
            next_progress_check: now,
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
            self.check_progress();
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

    /// The largest message rank `from` may send now: what the jobs it
    /// holds could return; a little, to be dropped, from a lost rank or one
    /// that is no rank of the pool.
    fn up_limit(&self, from: usize) -> u64 {
        match from.checked_sub(1).and_then(|slot| self.ranks.get(slot)) {
            Some(rank) if !rank.lost => self.bounds.up(rank.out() as u64, rank.holding.inputs() as u64),
            _ => DRAIN_BYTES,
        }
    }

    /// Takes every message that has arrived; whether there was any.
    fn receive(&mut self) -> bool {
        let mut any = false;
        loop {
            let received = link::try_receive(&self.world, None, TAG_UP, |from| self.up_limit(from));
            let Some(received) = received else { break };
            any = true;
            let (from, bytes) = match received {
                Received::Message(from, bytes) => (from, bytes),
                Received::TooLarge { rank: from, len } => {
                    let Some(slot) = from.checked_sub(1).filter(|&i| i < self.ranks.len()) else { continue };
                    if !self.ranks[slot].lost {
                        let limit = self.up_limit(from);
                        self.lose(slot, |rank, host| ClusterError::Oversized { rank, host, len, limit });
                    }
                    continue;
                }
            };
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
        // Each outcome as a sound rank could have sent it: the message's
        // size alone would let one outcome take the room of all of them.
        let max_output = self.bounds.max_output();
        if let Some(why) = result.outcomes.iter().find_map(|outcome| unbelievable_outcome(outcome, max_output)) {
            return Err(format!("{why} for job {}", result.id));
        }
        let Some(part) = self.parts.remove(&result.id) else { return Ok(()) };
        self.ranks[slot].holding.release(part.positions.len(), part.allowance);
        let Some(flight) = self.flights.get_mut(&part.flight) else { return Ok(()) };
        for (position, outcome) in part.positions.into_iter().zip(result.outcomes) {
            let stalled = matches!(outcome.result, Err(TaskFailure::Limit(LimitExceeded::Deadline { .. })));
            if stalled && flight.tries[position] < DEADLINE_RETRIES {
                flight.tries[position] += 1;
                self.ranks[slot].deadline_retries += 1;
                self.pending.push_back(Pending { flight: part.flight, positions: vec![position], avoid: Some(slot) });
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
            // Jobs' sizes as `policy::job_len` bounds them: a message takes
            // jobs while it holds less than BATCH_BYTES, so it stays within
            // what the other ranks accept (`MessageBounds::down`).
            let mut bytes = 0u64;
            // Inputs waiting come first: to run again, on a rank other than
            // where they stalled; the rest of a job cut in parts.
            let elsewhere = self.ranks.iter().filter(|r| !r.lost).count() > 1;
            let mut kept = VecDeque::new();
            while credit > 0 && bytes < BATCH_BYTES {
                let Some(pending) = self.pending.pop_front() else { break };
                if elsewhere && pending.avoid == Some(slot) {
                    kept.push_back(pending);
                    continue;
                }
                if let Some(job) = self.file_part(pending.flight, pending.positions, slot) {
                    bytes = bytes.saturating_add(policy::job_len(&job));
                    batch.push(job);
                    credit -= 1;
                }
            }
            kept.extend(self.pending.drain(..));
            self.pending = kept;
            while credit > 0 && bytes < BATCH_BYTES {
                // Past one chunk per worker, a rank gets more only while
                // others wait behind it: at the tail of a map the last
                // chunks stay in the queue for whichever worker frees first,
                // rather than wait behind a running chunk on one rank.
                let rank = &self.ranks[slot];
                if rank.out() >= rank.info.workers && self.held.is_none() && self.jobs.len() <= 1 {
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
                if let Some(remote) = self.take_flight(job, slot) {
                    bytes = bytes.saturating_add(policy::job_len(&remote));
                    batch.push(remote);
                    credit -= 1;
                }
            }
            if !batch.is_empty() {
                self.send(slot, &Down::Batch(batch));
                sent = true;
            }
        }
        self.next_rank = (self.next_rank + 1) % count.max(1);
        sent
    }

    /// Files a job from the queue as a flight, and returns its first part,
    /// for `slot`. A job too large for one message is cut in parts
    /// (`policy::cut`); the others wait their turn. An input whose
    /// arguments are larger than any instance's memory cannot run anywhere:
    /// it fails here with `LimitExceeded::Memory`, unsent. `None` if no part
    /// is left to send.
    fn take_flight(&mut self, job: Job, slot: usize) -> Option<RemoteJob> {
        let id = self.new_id();
        let Job { task, items, reply, limits, .. } = job;
        let lens: Vec<u64> =
            items.iter().map(|item| policy::item_len(item.args.as_ref().map(|args| args.len()))).collect();
        let framing = policy::job_framing(&task.name, &task.export);
        let (groups, refused) = policy::cut(&lens, framing, BATCH_BYTES, self.bounds.max_job());
        let count = items.len();
        let mut outcomes = vec![None; count];
        for &position in &refused {
            let requested = items[position].args.as_ref().map_or(0, |args| args.len() as u64);
            let limit = self.bounds.max_memory();
            outcomes[position] =
                Some(Outcome::bare(Err(TaskFailure::Limit(LimitExceeded::Memory { requested, limit }))));
        }
        self.flights.insert(
            id,
            Flight {
                task,
                limits,
                reply: Some(reply),
                items: items.into_iter().map(|item| (item.index, item.args)).collect(),
                outcomes,
                tries: vec![0; count],
                left: count - refused.len(),
            },
        );
        let mut groups = groups.into_iter();
        let Some(first) = groups.next() else {
            self.land(id);
            return None;
        };
        for positions in groups.rev() {
            self.pending.push_front(Pending { flight: id, positions, avoid: None });
        }
        self.file_part(id, first, slot)
    }

    /// Files `positions` of flight `flight` as a part sent to `slot`, and
    /// returns it as the message carries it.
    fn file_part(&mut self, flight: u64, positions: Vec<usize>, slot: usize) -> Option<RemoteJob> {
        let id = self.new_id();
        let entry = self.flights.get(&flight)?;
        let remote = remote_job(
            id,
            &entry.task,
            entry.limits,
            positions.iter().filter_map(|&p| entry.items.get(p)).map(|(index, args)| (*index, args)),
        );
        let allowance = policy::allowance(entry.limits.deadline, positions.len());
        let now = Instant::now();
        let rank = &mut self.ranks[slot];
        rank.holding.take(positions.len(), allowance);
        let due = rank.holding.due(now, self.timeout);
        self.parts.insert(id, Part { flight, positions, rank: slot, sent: now, allowance, due });
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

    /// Loses every rank that holds a job past its time (`policy::Holding::due`):
    /// it keeps answering, but makes no progress. Looked at every
    /// `PROGRESS_CHECK`.
    fn check_progress(&mut self) {
        let now = Instant::now();
        if now < self.next_progress_check {
            return;
        }
        self.next_progress_check = now + PROGRESS_CHECK;
        let mut stalled: Vec<(usize, usize, Duration)> = Vec::new();
        for part in self.parts.values() {
            if policy::overdue(part.due, now) && !stalled.iter().any(|(slot, ..)| *slot == part.rank) {
                // Whole milliseconds, for messages.
                let held = Duration::from_millis(now.duration_since(part.sent).as_millis() as u64);
                stalled.push((part.rank, part.positions.len(), held));
            }
        }
        for (slot, inputs, held) in stalled {
            self.lose(slot, |rank, host| ClusterError::Stalled { rank, host, inputs, held });
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
            ClusterError::Stalled { inputs, held, .. } => format!(
                "it kept answering but held a job of {inputs} input(s) for {held:?}, longer than their deadlines allow"
            ),
            ClusterError::Oversized { len, limit, .. } => {
                format!("it sent a message of {len} bytes, more than the {limit} bytes its jobs allow")
            }
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
        self.ranks[slot].holding.clear();
    }

    /// With every other rank lost: answers the inputs waiting to run again
    /// (their deadline failure stands), those of jobs cut in parts not yet
    /// sent, and the job taken but not sent.
    fn give_up(&mut self) {
        let unsent = match self.ranks.last() {
            Some(rank) => TaskFailure::RankLost {
                rank: rank.info.rank,
                host: rank.info.host.clone(),
                reason: "every other rank was lost before this input was sent".into(),
            },
            None => TaskFailure::PoolClosed,
        };
        while let Some(pending) = self.pending.pop_front() {
            if let Some(flight) = self.flights.get_mut(&pending.flight) {
                let failure = match pending.avoid {
                    Some(_) => TaskFailure::Limit(LimitExceeded::Deadline {
                        limit: flight.limits.deadline.unwrap_or_default(),
                    }),
                    None => unsent.clone(),
                };
                for position in pending.positions {
                    let outcome = Outcome::bare(Err(failure.clone()));
                    if flight.outcomes.get_mut(position).is_some_and(|slot| slot.replace(outcome).is_none()) {
                        flight.left -= 1;
                    }
                }
                self.land(pending.flight);
            }
        }
        if let Some(job) = self.held.take() {
            let failure = unsent;
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
