//! Every rank but 0: runs the jobs rank 0 sends on its local pool and
//! sends the results back in batches, until rank 0 closes the pool.
//!
//! Rank 0 is trusted (it holds the job), but what it sends is still sized
//! before it is received: no larger than rank 0 ever sends under the pool's
//! limits (`policy::MessageBounds::down`).

use super::fault::{self, Fault};
use super::link::{self, Backoff, HEARTBEAT, Received, Sending, TAG_DOWN, TAG_UP};
use super::policy::MessageBounds;
use super::setup::Cluster;
use super::wire::{self, Down, RankCounters, RemoteJob, RemoteResult, Up};
use super::{ClusterError, EXIT_RANK_LOST};
use crate::pool::Pool;
use crate::runtime::outbox::Listeners;
use crate::worker::jobs::{CallLimits, ChunkResult, Item, Job, ReplyTo, TaskTarget};
use crossbeam_channel::{RecvTimeoutError, unbounded};
use mpi::topology::Communicator;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest sleep of an idle rank between polls.
const IDLE_POLL: Duration = Duration::from_millis(2);

/// Serves rank 0 with `pool` until it closes the pool. A rank 0 silent
/// for the rank timeout ends the whole job (`MPI_Abort` with
/// [`EXIT_RANK_LOST`]): nobody is left to take this rank's results. A
/// message from rank 0 larger than `bounds` allows ends this rank's service
/// with [`ClusterError::Oversized`], unreceived.
pub(crate) fn serve(cluster: &Cluster, pool: &Pool, bounds: &MessageBounds) -> Result<(), ClusterError> {
    let world = cluster.world();
    let (results_tx, results) = unbounded::<ChunkResult>();
    let Some(queue) = pool.queue().cloned() else { return Ok(()) };
    let down_limit = bounds.down();
    // Faults asked of this rank by the tests (debug builds only).
    let hold = fault::asked(cluster.rank(), Fault::Hold);
    let mut oversize = fault::asked(cluster.rank(), Fault::Oversize);
    let mut long_outcome = fault::asked(cluster.rank(), Fault::LongOutcome);
    // Job numbers: the local pool's chunk numbers (usize) to rank 0's (u64).
    let mut ids: HashMap<usize, u64> = HashMap::new();
    let mut next_seq = 0usize;
    let mut sending: Vec<Sending> = Vec::new();
    let mut last_heard = Instant::now();
    let mut last_sent = Instant::now();
    let mut closing = false;
    let mut early: Option<ChunkResult> = None;
    let mut backoff = Backoff::new(IDLE_POLL);
    loop {
        let mut active = false;
        loop {
            let received = link::try_receive(&world, Some(0), TAG_DOWN, |_| down_limit);
            let bytes = match received {
                None => break,
                Some(Received::Message(_, bytes)) => bytes,
                Some(Received::TooLarge { len, .. }) => {
                    return Err(ClusterError::Oversized { rank: 0, host: "rank 0".into(), len, limit: down_limit });
                }
            };
            active = true;
            last_heard = Instant::now();
            match wire::decode::<Down>(&bytes) {
                Ok(Down::Batch(jobs)) => {
                    for job in jobs {
                        if hold {
                            // Kept, never run nor answered.
                            continue;
                        }
                        ids.insert(next_seq, job.id);
                        let _ = queue.send(local_job(job, next_seq, &results_tx));
                        next_seq += 1;
                    }
                }
                Ok(Down::Ping) => {}
                Ok(Down::Close) => closing = true,
                Err(reason) => {
                    return Err(ClusterError::Protocol { rank: 0, host: "rank 0".into(), reason });
                }
            }
        }
        let mut done = Vec::new();
        for chunk in early.take().into_iter().chain(results.try_iter()) {
            let Some(id) = ids.remove(&chunk.seq) else { continue };
            done.push(RemoteResult { id, outcomes: chunk.results.into_iter().map(|(_, outcome)| outcome).collect() });
        }
        if oversize && let Some(outcome) = done.first_mut().and_then(|result| result.outcomes.first_mut()) {
            // More than rank 0 accepts from a rank holding a full window of
            // jobs of one input each.
            oversize = false;
            let window = (pool.workers() * 2).max(2) as u64;
            let pad = bounds.up(window, window).saturating_add(1);
            outcome.output.stderr.resize(usize::try_from(pad).unwrap_or(usize::MAX), b'x');
        }
        if long_outcome && let Some(outcome) = done.first_mut().and_then(|result| result.outcomes.first_mut()) {
            // One outcome past the output limit, the message within its own.
            long_outcome = false;
            outcome.output.stderr.resize(bounds.max_output().saturating_add(1), b'x');
        }
        if !done.is_empty() || last_sent.elapsed() >= HEARTBEAT {
            active |= !done.is_empty();
            let message = if done.is_empty() { Up::Alive(counters(pool)) } else { Up::Results(done, counters(pool)) };
            match wire::encode(&message) {
                Ok(bytes) => sending.push(Sending::start(&world, 0, TAG_UP, bytes)),
                Err(reason) => tracing::error!(%reason, "cannot send results to rank 0"),
            }
            last_sent = Instant::now();
        }
        sending.retain_mut(|s| !s.done());
        if closing && ids.is_empty() {
            link::finish_sends(&mut sending, cluster.rank_timeout);
            return Ok(());
        }
        if last_heard.elapsed() > cluster.rank_timeout {
            eprintln!(
                "wasmpool: rank {} (host {}): nothing heard from rank 0 for {:?}; ending the job",
                cluster.rank(),
                crate::text::escape_line(cluster.host()),
                last_heard.elapsed()
            );
            world.abort(i32::from(EXIT_RANK_LOST));
        }
        if active {
            backoff.reset();
        } else if ids.is_empty() {
            backoff.sleep();
        } else {
            match results.recv_timeout(backoff.next()) {
                Ok(chunk) => early = Some(chunk),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        }
    }
}

/// Rank 0's job as a job of the local pool, answering to `results`.
fn local_job(job: RemoteJob, seq: usize, results: &crossbeam_channel::Sender<ChunkResult>) -> Job {
    let task = Arc::new(TaskTarget {
        name: job.task,
        export: job.export,
        seed_key: job.seed_key,
        listeners: Listeners::default(),
    });
    let items = job
        .items
        .into_iter()
        .map(|item| Item {
            index: usize::try_from(item.index).unwrap_or(usize::MAX),
            args: item.args.map(serde_bytes::ByteBuf::into_vec),
        })
        .collect();
    Job {
        task,
        items,
        reply: ReplyTo::Chunk { seq, to: results.clone() },
        cancelled: None,
        limits: CallLimits { deadline: job.deadline, fuel: job.fuel },
    }
}

/// The local pool's counters, summed over its workers.
fn counters(pool: &Pool) -> RankCounters {
    let stats = pool.stats();
    RankCounters {
        tasks: stats.workers.iter().map(|w| w.tasks).sum(),
        busy: stats.workers.iter().map(|w| w.busy).sum(),
        retries: stats.workers.iter().map(|w| w.retries).sum(),
    }
}
