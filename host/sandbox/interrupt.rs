//! Stopping a running task: at its deadline, or when its caller cancels it.
//!
//! Two mechanisms share the [`Ticker`] and the [`Watch`] below:
//! - thread workers use wasmtime's epoch interruption: compiled code checks
//!   a counter at every loop head and function entry; the ticker bumps the
//!   counter every [`TICK`], and the store's callback then asks the watch
//!   whether to stop. This costs about a third of a tight loop's speed,
//!   which is why it is compiled in only when the pool asks for it;
//! - worker processes run uninstrumented code: the ticker asks each busy
//!   process's watch instead, and kills the process when it says stop.

use crate::error::LimitExceeded;
use crate::error::TaskFailure;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a running task's deadline and cancel flag are looked at.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// What one task may use, resolved from the pool's and the call's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunLimits {
    /// Wall time from the moment the task starts.
    pub deadline: Option<Duration>,
    /// Instruction budget (only where the engine meters fuel).
    pub fuel: Option<u64>,
    /// Set by the caller to stop the task.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Set when the pool is dropped: the task stops too.
    pub closing: Option<Arc<AtomicBool>>,
}

impl RunLimits {
    /// Whether anything must be watched while the task runs.
    pub(crate) fn is_watched(&self) -> bool {
        self.deadline.is_some() || self.cancel.is_some() || self.closing.is_some()
    }
}

/// Why a running task was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Interrupted {
    #[error("the task ran past its deadline of {0:?}")]
    Deadline(Duration),
    #[error("the task was cancelled")]
    Cancelled,
    #[error("the pool shut down")]
    PoolClosed,
}

impl From<Interrupted> for TaskFailure {
    fn from(why: Interrupted) -> Self {
        match why {
            Interrupted::Deadline(limit) => TaskFailure::Limit(LimitExceeded::Deadline { limit }),
            Interrupted::Cancelled => TaskFailure::Cancelled,
            Interrupted::PoolClosed => TaskFailure::PoolClosed,
        }
    }
}

/// A running task's deadline and cancel flag.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    deadline: Option<(Instant, Duration)>,
    cancel: Option<Arc<AtomicBool>>,
    closing: Option<Arc<AtomicBool>>,
}

impl Watch {
    /// Starts watching a task that begins now.
    pub(crate) fn start(limits: &RunLimits) -> Self {
        Watch {
            deadline: limits.deadline.map(|d| (Instant::now() + d, d)),
            cancel: limits.cancel.clone(),
            closing: limits.closing.clone(),
        }
    }

    /// Whether the task must stop now, and why.
    pub(crate) fn check(&self) -> Option<Interrupted> {
        if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Some(Interrupted::Cancelled);
        }
        if self.closing.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Some(Interrupted::PoolClosed);
        }
        match self.deadline {
            Some((at, limit)) if Instant::now() >= at => Some(Interrupted::Deadline(limit)),
            _ => None,
        }
    }
}

/// A background thread calling `tick` every [`TICK`] while at least one
/// watched task runs, and sleeping otherwise.
///
/// It goes to sleep only after a whole period in which nothing was
/// watched, and entering wakes it only if it sleeps: a worker running
/// short tasks back to back would otherwise wake it (a futex call and a
/// context switch, several µs) at every task, as it did until 2026-12-07
/// (about a fifth of the CPU time of a map of `sqrt` from Python).
pub(crate) struct Ticker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    active: AtomicUsize,
    stop: AtomicBool,
    /// Set by the thread just before it parks for good; whoever clears it
    /// must unpark it.
    sleeping: AtomicBool,
}

/// Keeps the ticker ticking while it lives.
pub(crate) struct TickGuard {
    shared: Arc<TickerShared>,
}

impl Ticker {
    /// Starts the thread.
    pub(crate) fn start(name: &str, tick: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        Self::with_period(name, TICK, tick)
    }

    /// Starts the thread with a period other than [`TICK`].
    fn with_period(name: &str, period: Duration, tick: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(TickerShared {
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut idle = true;
            while !state.stop.load(Ordering::SeqCst) {
                if idle {
                    // Announce the sleep, then look again: an `enter` either
                    // sees the flag (and unparks), or is seen here.
                    state.sleeping.store(true, Ordering::SeqCst);
                    if state.active.load(Ordering::SeqCst) == 0 && !state.stop.load(Ordering::SeqCst) {
                        std::thread::park();
                    }
                    state.sleeping.store(false, Ordering::SeqCst);
                    idle = false;
                    continue;
                }
                // Parked rather than asleep, so that dropping the ticker
                // wakes it at once instead of after the rest of a tick.
                let next = Instant::now() + period;
                loop {
                    if state.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    std::thread::park_timeout(next - now);
                }
                if state.active.load(Ordering::SeqCst) > 0 {
                    tick();
                } else {
                    idle = true;
                }
            }
        })?;
        Ok(Ticker { shared, thread: Some(thread) })
    }

    /// Ticks until the returned guard is dropped.
    pub(crate) fn enter(&self) -> TickGuard {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.sleeping.swap(false, Ordering::SeqCst)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
        TickGuard { shared: self.shared.clone() }
    }
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_stops_at_its_deadline_or_on_cancel() {
        let cancel = Arc::new(AtomicBool::new(false));
        // A deadline far enough away that a slow machine never reaches it.
        let limits = RunLimits {
            deadline: Some(Duration::from_secs(3600)),
            cancel: Some(cancel.clone()),
            ..RunLimits::default()
        };
        let watch = Watch::start(&limits);
        assert_eq!(watch.check(), None);
        cancel.store(true, Ordering::SeqCst);
        assert_eq!(watch.check(), Some(Interrupted::Cancelled));
        let short = RunLimits { deadline: Some(Duration::from_millis(30)), ..RunLimits::default() };
        let watch = Watch::start(&short);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(watch.check(), Some(Interrupted::Deadline(Duration::from_millis(30))));
        assert!(!RunLimits::default().is_watched());
        assert!(limits.is_watched());
    }

    /// A ticker counting its ticks, and the count.
    fn counting_ticker() -> (Ticker, Arc<AtomicUsize>) {
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = Ticker::start("test-ticker", move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        (ticker, ticks)
    }

    #[test]
    fn the_ticker_ticks_only_while_entered() {
        let (ticker, ticks) = counting_ticker();
        std::thread::sleep(TICK * 4);
        assert_eq!(ticks.load(Ordering::SeqCst), 0, "no ticks while nothing is watched");
        let guard = ticker.enter();
        let start = Instant::now();
        while ticks.load(Ordering::SeqCst) < 3 {
            assert!(start.elapsed() < Duration::from_secs(10), "the ticker never ticked");
            std::thread::sleep(TICK);
        }
        drop(guard);
        drop(ticker);
    }

    #[test]
    fn the_ticker_sleeps_after_an_idle_period_and_wakes_for_the_next_task() {
        let (ticker, ticks) = counting_ticker();
        let wait_for = |what: &str, done: &dyn Fn() -> bool| {
            let start = Instant::now();
            while !done() {
                assert!(start.elapsed() < Duration::from_secs(10), "{what}");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        for _ in 0..3 {
            wait_for("the ticker never went to sleep", &|| ticker.shared.sleeping.load(Ordering::SeqCst));
            // Short tasks back to back: the first wakes it, the rest find it awake.
            for _ in 0..1000 {
                drop(ticker.enter());
            }
            let guard = ticker.enter();
            let before = ticks.load(Ordering::SeqCst);
            wait_for("no tick while a task ran", &|| ticks.load(Ordering::SeqCst) > before);
            drop(guard);
        }
    }

    #[test]
    fn dropping_a_ticker_mid_tick_does_not_wait_for_the_tick() {
        // With an hour-long period, a drop that waited for the tick would
        // never come back within the minute allowed here.
        let ticker = Ticker::with_period("test-ticker", Duration::from_secs(3600), || {}).unwrap();
        let _guard = ticker.enter();
        let (done, dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(ticker);
            let _ = done.send(());
        });
        assert!(dropped.recv_timeout(Duration::from_secs(60)).is_ok(), "dropping waited for the tick");
    }
}
