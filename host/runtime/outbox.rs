//! Messages from running tasks to the host: what a task sends through its
//! `Sender` or reports with `progress(done, total)`, and where it goes.
//!
//! A task's messages travel while it runs, not at its end:
//! - in a thread worker, the host function the guest calls hands each one
//!   to an outbox at once;
//! - in a worker process, the process writes each one to its pipe as a
//!   frame ahead of the task's result, and the worker thread tending it
//!   hands them to the same kind of outbox on the host's side.
//!
//! The outbox delivers into the call's listeners: an
//! [`Exchange`](exchange::Exchange)'s bounded queue (a task whose messages
//! are not read fast enough waits for room, up to its deadline: it is
//! slowed, and host memory stays bounded) and a progress callback.

use crate::runtime::instance::Outcome;
use crate::sandbox::interrupt::{Interrupted, TICK, Watch};
use crossbeam_channel::{SendTimeoutError, Sender};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One thing a running task sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Sent {
    /// A message, in the encoding of the task's call: postcard from a
    /// typed call's `Sender`, JSON text from a call through the JSON entry
    /// point (and from a task component's `send`).
    Message(Vec<u8>),
    /// `progress(done, total)`.
    Progress { done: u64, total: u64 },
}

/// A progress callback: the input's index, work done and work in all.
pub(crate) type ProgressFn = Arc<dyn Fn(usize, u64, u64) + Send + Sync>;

/// Who listens to the tasks of one call.
#[derive(Clone, Default)]
pub(crate) struct Listeners {
    /// An exchange's queue: messages, progress and results, in the order
    /// they happened.
    pub events: Option<Sender<RawEvent>>,
    /// The call's progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("events", &self.events.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Listeners {
    /// Whether a task's messages would reach anyone.
    pub(crate) fn wants_messages(&self) -> bool {
        self.events.is_some()
    }

    /// Whether a task's progress would reach anyone.
    pub(crate) fn wants_progress(&self) -> bool {
        self.events.is_some() || self.progress.is_some()
    }
}

/// What an exchange's queue carries, before decoding.
pub(crate) enum RawEvent {
    /// Something task `index` sent while running.
    Sent { index: usize, sent: Sent },
    /// Task `index` finished.
    Finished { index: usize, outcome: Outcome },
}

/// Where the running task's messages go.
pub(crate) trait Outbox: Send {
    /// Delivers one message: `Ok(true)` if someone received it, `Ok(false)`
    /// if nobody listens (it is dropped), `Err` if the task must stop while
    /// waiting for room (its deadline passed, or it was cancelled).
    fn deliver(&mut self, sent: Sent, watch: &Watch) -> Result<bool, Interrupted>;
}

/// The outbox of one task in the host: delivers to its call's listeners.
pub(crate) struct ChannelOutbox {
    pub index: usize,
    pub listeners: Listeners,
}

impl Outbox for ChannelOutbox {
    fn deliver(&mut self, sent: Sent, watch: &Watch) -> Result<bool, Interrupted> {
        if let (Sent::Progress { done, total }, Some(callback)) = (&sent, &self.listeners.progress) {
            callback(self.index, *done, *total);
        }
        let Some(events) = &self.listeners.events else {
            return Ok(matches!(sent, Sent::Progress { .. }) && self.listeners.progress.is_some());
        };
        let mut event = RawEvent::Sent { index: self.index, sent };
        loop {
            match events.send_timeout(event, TICK) {
                Ok(()) => return Ok(true),
                Err(SendTimeoutError::Disconnected(_)) => return Ok(false),
                Err(SendTimeoutError::Timeout(back)) => {
                    if let Some(why) = watch.check() {
                        return Err(why);
                    }
                    event = back;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::interrupt::RunLimits;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn a_full_queue_holds_the_task_until_its_deadline() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut outbox = ChannelOutbox { index: 3, listeners: Listeners { events: Some(tx), progress: None } };
        // The deadline counts from the watch's start: measured from before
        // it, the wait is at least 40 ms however slow the first delivery
        // (under qemu it took over 10 ms, which a bound taken after it missed).
        let started = std::time::Instant::now();
        let watch = Watch::start(&RunLimits { deadline: Some(Duration::from_millis(40)), ..RunLimits::default() });
        assert_eq!(outbox.deliver(Sent::Message(vec![1]), &watch), Ok(true));
        assert_eq!(
            outbox.deliver(Sent::Message(vec![2]), &watch),
            Err(Interrupted::Deadline(Duration::from_millis(40)))
        );
        assert!(started.elapsed() >= Duration::from_millis(40));
        match rx.try_recv() {
            Ok(RawEvent::Sent { index: 3, sent: Sent::Message(bytes) }) => assert_eq!(bytes, [1]),
            _ => panic!("the first message should be queued"),
        }
        drop(rx);
        assert_eq!(outbox.deliver(Sent::Message(vec![3]), &Watch::default()), Ok(false), "nobody listens any more");
    }

    #[test]
    fn progress_reaches_the_callback_without_an_exchange() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress: ProgressFn = Arc::new(move |i, done, total| sink.lock().unwrap().push((i, done, total)));
        let mut outbox = ChannelOutbox { index: 7, listeners: Listeners { events: None, progress: Some(progress) } };
        assert_eq!(outbox.deliver(Sent::Progress { done: 1, total: 4 }, &Watch::default()), Ok(true));
        assert_eq!(outbox.deliver(Sent::Message(vec![0]), &Watch::default()), Ok(false));
        assert_eq!(*seen.lock().unwrap(), [(7, 1, 4)]);
    }
}
