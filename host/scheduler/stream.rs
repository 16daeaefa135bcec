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
use crate::sandbox::output::OutputSink;
use crate::spin::spin_for;
use crate::worker::jobs::{CallLimits, ChunkResult, Item, Job, ReplyTo, TaskTarget};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, VecDeque};
use std::iter::Fuse;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
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
    /// Where the output of each task goes as its result is decoded.
    output: OutputSink,
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
            output: OutputSink::Discard,
            short_waits: true,
        }
    }

    /// Hands each task's printed output to `sink` as its result is decoded.
    pub(crate) fn with_output(mut self, sink: OutputSink) -> Self {
        self.output = sink;
        self
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
        match self.next_chunk_within(held, None) {
            Poll::Ready(chunk) => chunk,
            Poll::Pending => unreachable!("an unbounded wait cannot time out"),
        }
    }

    /// Like [`next_chunk`](Self::next_chunk), but waits at most `timeout`
    /// (`None`: for as long as it takes); `Pending` when none finished by
    /// then, with nothing lost: the next call waits for the same chunks.
    pub(crate) fn next_chunk_within(&mut self, held: usize, timeout: Option<Duration>) -> Poll<Option<ChunkResult>> {
        self.fill(held);
        if self.in_flight == 0 {
            return Poll::Ready(None);
        }
        // Each job holds a sender clone until it replies, and our own
        // `results_tx` keeps the channel open, so this cannot disconnect.
        // Spin only while chunks arrive faster than the spin budget: a
        // caller spinning through long tasks would take a core from the
        // workers (three threads on two cores slowed a Mandelbrot map by
        // a fifth). A blocking wait that turns out short turns it back on.
        let results = &self.results_rx;
        let waiting = Instant::now();
        let spin = timeout.map_or(self.spin, |timeout| timeout.min(self.spin));
        let spun = if self.short_waits { spin_for(spin, || results.try_recv().ok()) } else { None };
        let chunk = match (spun, timeout) {
            (Some(chunk), _) => chunk,
            (None, None) => match results.recv() {
                Ok(chunk) => chunk,
                Err(_) => return Poll::Ready(None),
            },
            (None, Some(timeout)) => match results.recv_timeout(timeout.saturating_sub(waiting.elapsed())) {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => {
                    self.short_waits = false;
                    return Poll::Pending;
                }
                Err(RecvTimeoutError::Disconnected) => return Poll::Ready(None),
            },
        };
        self.short_waits = waiting.elapsed() < self.spin;
        self.in_flight -= 1;
        Poll::Ready(Some(chunk))
    }

    pub(crate) fn task_error(&self, index: usize, failure: crate::error::TaskFailure) -> TaskError {
        TaskError { task: self.task.name.clone(), index, failure }
    }

    /// The result of the input at `index`, its printed output handed to
    /// the map's sink.
    pub(crate) fn decode<R>(&self, index: usize, outcome: Outcome, decode: Decoder<R>) -> Result<R, TaskError> {
        self.output.deliver(&self.task.name, index, &outcome.output);
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

impl<I: Iterator, R> Imap<'_, I, R> {
    /// The next result, waiting at most `timeout` for it: `Pending` if it
    /// has not come by then (call again to go on waiting; nothing is lost),
    /// `Ready(None)` at the end. For a caller that must do something else
    /// while it waits, such as checking for Ctrl-C.
    pub fn next_timeout(&mut self, timeout: Duration) -> Poll<Option<Result<R, TaskError>>> {
        self.next_within(Some(timeout))
    }

    /// The next result if it has already arrived, without waiting and
    /// without dispatching more inputs (the next wait does): for a caller
    /// that must give up a lock, such as Python's, only to wait.
    pub fn next_ready(&mut self) -> Option<Result<R, TaskError>> {
        if self.current.is_empty() {
            let chunk = self.ahead.remove(&self.next_seq)?;
            self.current = chunk.into();
            self.next_seq += 1;
        }
        let (index, result) = self.current.pop_front()?;
        Some(self.dispatch.decode(index, result, self.decode))
    }

    fn next_within(&mut self, timeout: Option<Duration>) -> Poll<Option<Result<R, TaskError>>> {
        loop {
            if let Some((index, result)) = self.current.pop_front() {
                return Poll::Ready(Some(self.dispatch.decode(index, result, self.decode)));
            }
            if let Some(chunk) = self.ahead.remove(&self.next_seq) {
                self.current = chunk.into();
                self.next_seq += 1;
                continue;
            }
            match self.dispatch.next_chunk_within(self.ahead.len(), timeout) {
                Poll::Ready(Some(chunk)) => self.ahead.insert(chunk.seq, chunk.results),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
        }
    }
}

impl<I: Iterator, R> Iterator for Imap<'_, I, R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_within(None) {
            Poll::Ready(item) => item,
            Poll::Pending => unreachable!("an unbounded wait cannot time out"),
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

impl<I: Iterator, R> ImapUnordered<'_, I, R> {
    /// The next `(input index, result)`, waiting at most `timeout`:
    /// `Pending` if none has come by then (call again; nothing is lost),
    /// `Ready(None)` at the end. See [`Imap::next_timeout`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Poll<Option<(usize, Result<R, TaskError>)>> {
        self.next_within(Some(timeout))
    }

    /// The next `(input index, result)` if it has already arrived; see
    /// [`Imap::next_ready`].
    pub fn next_ready(&mut self) -> Option<(usize, Result<R, TaskError>)> {
        let (index, result) = self.current.pop_front()?;
        Some((index, self.dispatch.decode(index, result, self.decode)))
    }

    fn next_within(&mut self, timeout: Option<Duration>) -> Poll<Option<(usize, Result<R, TaskError>)>> {
        loop {
            if let Some((index, result)) = self.current.pop_front() {
                return Poll::Ready(Some((index, self.dispatch.decode(index, result, self.decode))));
            }
            match self.dispatch.next_chunk_within(0, timeout) {
                Poll::Ready(Some(chunk)) => self.current = chunk.results.into(),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<I: Iterator, R> Iterator for ImapUnordered<'_, I, R> {
    type Item = (usize, Result<R, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_within(None) {
            Poll::Ready(item) => item,
            Poll::Pending => unreachable!("an unbounded wait cannot time out"),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The dispatch with the test standing in for the workers: how many
    //! inputs it pulls, how it chunks them, and what a caller sees when the
    //! workers are gone.

    use super::*;
    use crate::runtime::outbox::Listeners;
    use std::cell::Cell;
    use std::rc::Rc;

    fn target() -> Arc<TaskTarget> {
        Arc::new(TaskTarget { name: "t".into(), export: "e".into(), seed_key: 1, listeners: Listeners::default() })
    }

    fn encode(x: u32) -> Result<Vec<u8>, TaskFailure> {
        if x == u32::MAX { Err(TaskFailure::EncodeArguments("too big".into())) } else { Ok(x.to_le_bytes().to_vec()) }
    }

    /// A dispatch over 0, 1, 2, … (as many as `count`, or endless), counting
    /// the inputs it has pulled.
    fn dispatch(
        count: Option<u32>,
        chunk_size: usize,
        window: usize,
    ) -> (Dispatch<impl Iterator<Item = u32>>, Receiver<Job>, Rc<Cell<u32>>) {
        let (queue, jobs) = unbounded();
        let pulled = Rc::new(Cell::new(0));
        let counter = pulled.clone();
        let inputs = (0..count.unwrap_or(u32::MAX - 1)).inspect(move |_| counter.set(counter.get() + 1));
        let dispatch =
            Dispatch::new(queue, target(), inputs, encode, chunk_size, window, CallLimits::default(), Duration::ZERO);
        (dispatch, jobs, pulled)
    }

    /// Answers a job as a worker would: each input's arguments as its result.
    fn answer(job: Job) {
        let results = job.items.into_iter().map(|item| (item.index, Outcome::bare(item.args))).collect();
        job.reply.send(results);
    }

    fn indexes(job: &Job) -> Vec<usize> {
        job.items.iter().map(|item| item.index).collect()
    }

    #[test]
    fn an_endless_input_is_pulled_only_as_far_as_the_window() {
        let (mut dispatch, jobs, pulled) = dispatch(None, 3, 2);
        dispatch.fill(0);
        assert_eq!(pulled.get(), 6, "two chunks of three");
        let queued: Vec<Job> = jobs.try_iter().collect();
        assert_eq!(queued.iter().map(indexes).collect::<Vec<_>>(), [vec![0, 1, 2], vec![3, 4, 5]]);

        // Chunks the caller still holds count against the window too.
        dispatch.fill(2);
        assert_eq!(pulled.get(), 6);

        // A chunk consumed makes room for one more, pulled when the next
        // result is asked for.
        let mut queued = queued.into_iter();
        answer(queued.next().unwrap());
        let chunk = dispatch.next_chunk(0).expect("the answered chunk");
        assert_eq!(chunk.seq, 0);
        assert_eq!(pulled.get(), 6);
        dispatch.fill(0);
        assert_eq!(pulled.get(), 9);
        assert_eq!(jobs.try_iter().map(|job| indexes(&job)).collect::<Vec<_>>(), [vec![6, 7, 8]]);
    }

    #[test]
    fn every_input_comes_back_once_then_the_stream_ends() {
        let (mut dispatch, jobs, pulled) = dispatch(Some(7), 3, 2);
        let worker = std::thread::spawn(move || jobs.iter().for_each(answer));
        let mut seen = Vec::new();
        while let Some(chunk) = dispatch.next_chunk(0) {
            seen.extend(chunk.results.into_iter().map(|(index, outcome)| (index, outcome.result)));
        }
        seen.sort_by_key(|(index, _)| *index);
        let expected: Vec<_> = (0..7u32).map(|x| (x as usize, encode(x))).collect();
        assert_eq!(seen, expected);
        assert_eq!(pulled.get(), 7);
        drop(dispatch);
        worker.join().unwrap();
    }

    #[test]
    fn a_timed_wait_with_no_answer_loses_nothing() {
        let (dispatch, jobs, pulled) = dispatch(Some(4), 2, 2);
        let mut stream: Imap<'static, _, u32> = Imap::with_decoder(dispatch, |bytes| {
            Ok(u32::from_le_bytes(
                bytes
                    .try_into()
                    .map_err(|_| TaskFailure::DecodeResult { expected: "u32".into(), reason: "length".into() })?,
            ))
        });
        assert!(stream.next_timeout(Duration::from_millis(1)).is_pending());
        assert!(stream.next_timeout(Duration::ZERO).is_pending(), "a zero wait only looks");
        assert_eq!(pulled.get(), 4, "waiting again pulls no more inputs");
        // The second chunk answered first: the ordered stream still waits for the first.
        let mut queued: Vec<Job> = jobs.try_iter().collect();
        assert_eq!(queued.len(), 2);
        answer(queued.pop().unwrap());
        assert!(stream.next_timeout(Duration::from_millis(1)).is_pending());
        answer(queued.pop().unwrap());
        let results: Vec<u32> = stream.map(|r| r.unwrap()).collect();
        assert_eq!(results, [0, 1, 2, 3]);
    }

    #[test]
    fn large_inputs_close_a_chunk_at_the_byte_budget() {
        let (queue, jobs) = unbounded();
        let big = |_: u8| Ok(vec![0; CHUNK_BYTE_BUDGET / 2 + 1]);
        let mut dispatch = Dispatch::new(queue, target(), 0..5u8, big, 100, 10, CallLimits::default(), Duration::ZERO);
        dispatch.fill(0);
        let sizes: Vec<usize> = jobs.try_iter().map(|job| job.items.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
    }

    #[test]
    fn indexes_come_from_the_inputs_when_asked_and_encoding_failures_travel_with_their_input() {
        let (queue, jobs) = unbounded();
        let inputs = [(10usize, 1u32), (20, u32::MAX), (30, 3)].into_iter();
        let encode_pair = |(_, x): (usize, u32)| encode(x);
        let mut dispatch =
            Dispatch::new(queue, target(), inputs, encode_pair, 8, 1, CallLimits::default(), Duration::ZERO)
                .with_indices(|(index, _)| *index);
        dispatch.fill(0);
        let job = jobs.try_recv().expect("one chunk");
        assert_eq!(indexes(&job), [10, 20, 30]);
        assert!(matches!(job.items[1].args, Err(TaskFailure::EncodeArguments(_))));
    }

    #[test]
    fn with_the_workers_gone_every_input_is_answered_pool_closed() {
        let (mut dispatch, jobs, _) = dispatch(Some(5), 2, 2);
        drop(jobs);
        let mut seen = Vec::new();
        while let Some(chunk) = dispatch.next_chunk(0) {
            for (index, outcome) in chunk.results {
                assert!(matches!(outcome.result, Err(TaskFailure::PoolClosed)));
                seen.push(index);
            }
        }
        seen.sort();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn cancelling_or_dropping_the_dispatch_marks_its_queued_jobs_cancelled() {
        let (mut dispatch, jobs, _) = dispatch(Some(4), 2, 2);
        dispatch.fill(0);
        let queued: Vec<Job> = jobs.try_iter().collect();
        assert!(queued.iter().all(|job| !job.is_cancelled()));
        dispatch.cancel();
        assert!(queued.iter().all(Job::is_cancelled));

        let (mut dispatch, jobs, _) = self::dispatch(Some(4), 2, 2);
        dispatch.fill(0);
        drop(dispatch);
        assert!(jobs.try_iter().all(|job| job.is_cancelled()), "an abandoned map's chunks are skipped");
    }
}
