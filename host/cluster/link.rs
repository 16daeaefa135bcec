//! Messages between ranks over MPI: sends that never block the sender (so
//! a stalled receiver cannot stall rank 0), polled receives that size a
//! message before they take it, and the backoff with which a waiting rank
//! sleeps instead of spinning.

use mpi::point_to_point::Source;
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{Destination, Equivalence};
use std::time::Duration;

/// Set-up messages: [`Joined`](super::wire::Joined) and [`Go`](super::wire::Go).
pub(crate) const TAG_SETUP: i32 = 1;
/// Rank 0 to the others: [`Down`](super::wire::Down).
pub(crate) const TAG_DOWN: i32 = 2;
/// The others to rank 0: [`Up`](super::wire::Up).
pub(crate) const TAG_UP: i32 = 3;

/// How often a rank makes itself heard when it has nothing else to say.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// A message on its way out: its bytes stay alive, untouched, until MPI
/// reports the send complete.
pub(crate) struct Sending {
    request: Option<Request<'static, [u8], StaticScope>>,
    buffer: *mut [u8],
}

impl Sending {
    /// Starts sending `bytes` to `rank` under `tag`; returns at once.
    pub(super) fn start(world: &SimpleCommunicator, rank: i32, tag: i32, bytes: Vec<u8>) -> Sending {
        let buffer = Box::into_raw(bytes.into_boxed_slice());
        // SAFETY: `buffer` is a live allocation that nothing else touches
        // until `done` frees it, after MPI has finished reading it; if the
        // send never completes, `drop` leaks it rather than free it under MPI.
        let shared: &'static [u8] = unsafe { &*buffer };
        let request = world.process_at_rank(rank).immediate_send_with_tag(StaticScope, shared, tag);
        Sending { request: Some(request), buffer }
    }

    /// Whether the send is complete (its buffer is then freed).
    pub(super) fn done(&mut self) -> bool {
        let Some(request) = self.request.take() else { return true };
        match request.test() {
            Ok(_) => {
                // SAFETY: MPI is done with the buffer (see `start`), and the
                // request that borrowed it is gone.
                drop(unsafe { Box::from_raw(self.buffer) });
                true
            }
            Err(request) => {
                self.request = Some(request);
                false
            }
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if !self.done() {
            // MPI may still read the buffer: leak it, and the request (whose
            // own drop would panic). Only a rank given up for lost, or a
            // pool dropped mid-send, leaves one behind.
            std::mem::forget(self.request.take());
        }
    }
}

/// Waits, polling, until every send of `sending` completes or `limit`
/// passes.
pub(crate) fn finish_sends(sending: &mut Vec<Sending>, limit: Duration) {
    let until = std::time::Instant::now() + limit;
    let mut backoff = Backoff::new(Duration::from_millis(1));
    sending.retain_mut(|s| !s.done());
    while !sending.is_empty() && std::time::Instant::now() < until {
        backoff.sleep();
        sending.retain_mut(|s| !s.done());
    }
}

/// Sends `bytes` and waits, polling, until the send completes or `limit`
/// passes; whether it completed.
pub(crate) fn send_within(world: &SimpleCommunicator, rank: i32, tag: i32, bytes: Vec<u8>, limit: Duration) -> bool {
    let mut sending = vec![Sending::start(world, rank, tag, bytes)];
    finish_sends(&mut sending, limit);
    sending.is_empty()
}

/// A message found by [`try_receive`].
#[derive(Debug)]
pub(crate) enum Received {
    /// A message within its bound: its sender's rank and its bytes.
    Message(usize, Vec<u8>),
    /// A message from `rank` of `len` bytes, more than its bound: it was
    /// not received (nothing was allocated for it), and is left with MPI.
    /// Its sender is not to be trusted again.
    TooLarge {
        /// The sender.
        rank: usize,
        /// Its size (`u64::MAX` if MPI could not say).
        len: u64,
    },
}

/// The next message with `tag` from `from` (any rank if `None`), if one
/// has arrived. Its size, as MPI reports it before the message is taken,
/// is compared with `bound(sender's rank)` first: only a message within it
/// is received, into a buffer of exactly its size.
pub(crate) fn try_receive(
    world: &SimpleCommunicator,
    from: Option<i32>,
    tag: i32,
    bound: impl FnOnce(usize) -> u64,
) -> Option<Received> {
    let (message, status) = match from {
        Some(rank) => world.process_at_rank(rank).immediate_matched_probe_with_tag(tag),
        None => world.any_process().immediate_matched_probe_with_tag(tag),
    }?;
    let rank = usize::try_from(status.source_rank()).unwrap_or(usize::MAX);
    // A count MPI cannot give (MPI_UNDEFINED, negative) is no size at all.
    let len = u64::try_from(status.count(u8::equivalent_datatype())).unwrap_or(u64::MAX);
    let size = usize::try_from(len).ok().filter(|_| len <= bound(rank));
    let Some(size) = size else {
        // A matched message must be received before its handle is dropped
        // (rsmpi panics otherwise), and receiving it into a smaller buffer
        // is an error that aborts the job. So it is left with MPI: for a
        // message this large, MPI holds its envelope, not its bytes (they
        // stay with the sender until a receive is posted, and none will be).
        std::mem::forget(message);
        return Some(Received::TooLarge { rank, len });
    };
    let mut bytes = vec![0u8; size];
    message.matched_receive_into(&mut bytes[..]);
    Some(Received::Message(rank, bytes))
}

/// Waits, polling and sleeping, for a message with `tag` from `from`, at
/// most `limit`; its size is checked against `bound` as
/// [`try_receive`] does.
pub(crate) fn receive_within(
    world: &SimpleCommunicator,
    from: Option<i32>,
    tag: i32,
    limit: Duration,
    bound: u64,
) -> Option<Received> {
    let until = std::time::Instant::now() + limit;
    let mut backoff = Backoff::new(Duration::from_millis(2));
    loop {
        if let Some(message) = try_receive(world, from, tag, |_| bound) {
            return Some(message);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        backoff.sleep();
    }
}

/// Pauses between polls that found nothing: from 20 µs, doubling up to a
/// ceiling, so a busy rank answers at once and an idle one sleeps (a rank
/// polling every 2 ms uses well under 1 % of a core).
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_micros(20);

    /// A backoff that sleeps at most `max` at a time.
    pub(super) fn new(max: Duration) -> Self {
        Backoff { next: Self::FIRST, max }
    }

    /// The pause to take now (the next one is twice as long, up to `max`).
    pub(super) fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// Sleeps for [`next`](Self::next).
    pub(super) fn sleep(&mut self) {
        std::thread::sleep(self.next());
    }

    /// Something happened: the next pause is short again.
    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// This rank's number as MPI counts it.
pub(crate) fn mpi_rank(rank: usize) -> i32 {
    i32::try_from(rank).unwrap_or(i32::MAX)
}

/// The number of ranks in `world`.
pub(crate) fn size(world: &SimpleCommunicator) -> usize {
    usize::try_from(world.size()).unwrap_or(0)
}
