//! Feeding a map's inputs to the workers with bounded memory.
//!
//! A `Dispatch` pulls inputs from the caller's iterator only when fewer
//! than `window` chunks are out (queued, running, or finished but not yet
//! consumed), so an unbounded iterator streams through in constant memory:
//! this is the backpressure behind `imap` and `imap_unordered`.

use super::chunking::CHUNK_BYTE_BUDGET;
use crate::decode::decode_result;
use crate::error::{TaskError, TaskFailure};
use crate::runtime::instance::Outcome;
use crate::spin::spin_for;
use crate::worker::jobs::{CallLimits, ChunkResult, Item, Job, ReplyTo, TaskTarget};
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::iter::Fuse;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Turns one input into the bytes its task export takes (postcard, or JSON
/// for a task's JSON entry point).
pub(crate) type Encoder<T> = fn(T) -> Result<Vec<u8>, TaskFailure>;

/// Turns a task export's result bytes into the caller's value.
pub(crate) type Decoder<R> = fn(&[u8]) -> Result<R, TaskFailure>;

/// The sending half of a map: inputs in, chunk results out.
pub(crate) struct Dispatch<I: Iterator> {
    queue: Sender<Job>,
    task: Arc<TaskTarget>,
    inputs: Fuse<I>,
    encode: Encoder<I::Item>,
    /// Where each input's index comes from: the input itself, or (`None`)
    /// its position in the iterator.
    index_of: Option<fn(&I::Item) -> usize>,
    chunk_size: usize,
    window: usize,
    next_index: usize,
    next_seq: usize,
    in_flight: usize,
    results_tx: Sender<ChunkResult>,
    results_rx: Receiver<ChunkResult>,
    cancelled: Arc<AtomicBool>,
    limits: CallLimits,
    /// How long to check for a finished chunk before sleeping.
    spin: Duration,
    /// Whether the last wait for a chunk was shorter than `spin`: only then
    /// is spinning for the next one likely to pay (see `next_chunk`).
    short_waits: bool,
}

impl<I: Iterator> Dispatch<I> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        queue: Sender<Job>,
        task: Arc<TaskTarget>,
        inputs: I,
        encode: Encoder<I::Item>,
        chunk_size: usize,
        window: usize,
        limits: CallLimits,
        spin: Duration,
    ) -> Self {
        let (results_tx, results_rx) = unbounded();
        Dispatch {
            queue,
            task,
            inputs: inputs.fuse(),
            encode,
            index_of: None,
            chunk_size: chunk_size.max(1),
            window: window.max(1),
            next_index: 0,
            next_seq: 0,
            in_flight: 0,
            results_tx,
            results_rx,
            cancelled: Arc::new(AtomicBool::new(false)),
            limits,
            spin,
            short_waits: true,
        }
    }

    /// Takes each input's index from the input itself (its seed derives
    /// from it, and results carry it), not from its position.
    pub(crate) fn with_indices(mut self, index_of: fn(&I::Item) -> usize) -> Self {
        self.index_of = Some(index_of);
        self
    }

    /// Sends chunks until `held` (chunks the caller still buffers) plus the
    /// chunks in flight fill the window, or the inputs run out.
    fn fill(&mut self, held: usize) {
        while self.in_flight + held < self.window {
            let mut items = Vec::new();
            let mut bytes = 0;
            while items.len() < self.chunk_size && bytes < CHUNK_BYTE_BUDGET {
                let Some(input) = self.inputs.next() else { break };
                let index = self.index_of.map_or(self.next_index, |index_of| index_of(&input));
                let args = (self.encode)(input);
                bytes += args.as_ref().map_or(0, Vec::len);
                items.push(Item { index, args });
                self.next_index += 1;
            }
            if items.is_empty() {
                return;
            }
            let job = Job {
                task: self.task.clone(),
                items,
                reply: ReplyTo::Chunk { seq: self.next_seq, to: self.results_tx.clone() },
                cancelled: Some(self.cancelled.clone()),
                limits: self.limits,
            };
            if let Err(unsent) = self.queue.send(job) {
                // The workers are gone (the pool is being dropped): answer
                // the chunk ourselves so the caller still sees every index.
                let job = unsent.into_inner();
                let closed =
                    job.items.into_iter().map(|i| (i.index, Outcome::bare(Err(crate::error::TaskFailure::PoolClosed))));
                let _ = self.results_tx.send(ChunkResult { seq: self.next_seq, results: closed.collect() });
            }
            self.next_seq += 1;
            self.in_flight += 1;
        }
    }

    /// The next finished chunk (in completion order), or `None` when every
    /// input has been dispatched and answered.
    pub(crate) fn next_chunk(&mut self, held: usize) -> Option<ChunkResult> {
        self.fill(held);
        if self.in_flight == 0 {
            return None;
        }
        // Each job holds a sender clone until it replies, and our own
        // `results_tx` keeps the channel open, so this cannot disconnect.
        // Spin only while chunks arrive faster than the spin budget: a
        // caller spinning through long tasks would take a core from the
        // workers (three threads on two cores slowed a Mandelbrot map by
        // a fifth). A blocking wait that turns out short turns it back on.
        let results = &self.results_rx;
        let waiting = Instant::now();
        let spun = if self.short_waits { spin_for(self.spin, || results.try_recv().ok()) } else { None };
        let chunk = match spun {
            Some(chunk) => chunk,
            None => results.recv().ok()?,
        };
        self.short_waits = waiting.elapsed() < self.spin;
        self.in_flight -= 1;
        Some(chunk)
    }

    pub(crate) fn task_error(&self, index: usize, failure: crate::error::TaskFailure) -> TaskError {
        TaskError { task: self.task.name.clone(), index, failure }
    }

    pub(crate) fn decode<R>(&self, index: usize, outcome: Outcome, decode: Decoder<R>) -> Result<R, TaskError> {
        outcome.result.and_then(|bytes| decode(&bytes)).map_err(|f| self.task_error(index, f))
    }

    /// Stops dispatching further inputs; queued chunks are skipped and
    /// running ones interrupted where the pool can.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl<I: Iterator> Drop for Dispatch<I> {
    fn drop(&mut self) {
        // Queued chunks of an abandoned map are skipped by the workers.
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Ties a stream to its pool's lifetime and its result type.
type Borrows<'pool, R> = PhantomData<(&'pool (), fn() -> R)>;

/// Results in input order; see [`Pool::imap`](crate::Pool::imap).
pub struct Imap<'pool, I: Iterator, R> {
    dispatch: Dispatch<I>,
    decode: Decoder<R>,
    /// Finished chunks that arrived ahead of their turn, by sequence number.
    ahead: BTreeMap<usize, Vec<(usize, Outcome)>>,
    current: VecDeque<(usize, Outcome)>,
    next_seq: usize,
    _pool: Borrows<'pool, R>,
}

impl<I: Iterator, R: DeserializeOwned> Imap<'_, I, R> {
    /// Results decoded from postcard.
    pub(crate) fn new(dispatch: Dispatch<I>) -> Self {
        Self::with_decoder(dispatch, decode_result::<R>)
    }
}

impl<I: Iterator, R> Imap<'_, I, R> {
    /// Results decoded by `decode`.
    pub(crate) fn with_decoder(dispatch: Dispatch<I>, decode: Decoder<R>) -> Self {
        Imap { dispatch, decode, ahead: BTreeMap::new(), current: VecDeque::new(), next_seq: 0, _pool: PhantomData }
    }
}

impl<I: Iterator, R> Iterator for Imap<'_, I, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((index, result)) = self.current.pop_front() {
                return Some(self.dispatch.decode(index, result, self.decode));
            }
            if let Some(chunk) = self.ahead.remove(&self.next_seq) {
                self.current = chunk.into();
                self.next_seq += 1;
                continue;
            }
            let chunk = self.dispatch.next_chunk(self.ahead.len())?;
            self.ahead.insert(chunk.seq, chunk.results);
        }
    }
}

/// Results in completion order, each with its input's index; see
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered).
pub struct ImapUnordered<'pool, I: Iterator, R> {
    dispatch: Dispatch<I>,
    decode: Decoder<R>,
    current: VecDeque<(usize, Outcome)>,
    _pool: Borrows<'pool, R>,
}

impl<I: Iterator, R: DeserializeOwned> ImapUnordered<'_, I, R> {
    /// Results decoded from postcard.
    pub(crate) fn new(dispatch: Dispatch<I>) -> Self {
        Self::with_decoder(dispatch, decode_result::<R>)
    }
}

impl<I: Iterator, R> ImapUnordered<'_, I, R> {
    /// Results decoded by `decode`.
    pub(crate) fn with_decoder(dispatch: Dispatch<I>, decode: Decoder<R>) -> Self {
        ImapUnordered { dispatch, decode, current: VecDeque::new(), _pool: PhantomData }
    }

    /// Stops dispatching further inputs; chunks already queued are skipped.
    pub(crate) fn cancel(&mut self) {
        self.dispatch.cancel();
    }
}

impl<I: Iterator, R> Iterator for ImapUnordered<'_, I, R> {
    type Item = (usize, Result<R, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((index, result)) = self.current.pop_front() {
                return Some((index, self.dispatch.decode(index, result, self.decode)));
            }
            let chunk = self.dispatch.next_chunk(0)?;
            self.current = chunk.results.into();
        }
    }
}
