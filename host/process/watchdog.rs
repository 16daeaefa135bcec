//! Deadlines and cancellation for worker processes: a process running a
//! task past its deadline, or whose task was cancelled, is killed (and
//! replaced by its worker thread). The task's code carries no checks, so
//! this costs nothing while it runs.

use super::supervisor::ProcessSlot;
use crate::sandbox::interrupt::{RunLimits, TickGuard, Ticker, Watch};
use crate::sync::lock;
use std::sync::{Arc, Mutex, Weak};

/// Watches the busy processes of one pool.
pub(crate) struct Watchdog {
    watched: Arc<Mutex<Vec<Weak<ProcessSlot>>>>,
    ticker: Ticker,
}

/// Keeps one process watched while it lives.
pub(crate) struct Watching<'a> {
    slot: &'a ProcessSlot,
    _ticking: TickGuard,
}

impl Watchdog {
    /// Starts the watchdog's thread (idle until something is watched).
    pub(crate) fn start() -> std::io::Result<Self> {
        let watched: Arc<Mutex<Vec<Weak<ProcessSlot>>>> = Arc::default();
        let slots = watched.clone();
        let ticker = Ticker::start("wasmpool-watchdog", move || {
            let mut slots = lock(&slots);
            slots.retain(|slot| slot.strong_count() > 0);
            for slot in slots.iter().filter_map(Weak::upgrade) {
                slot.check_watch();
            }
        })?;
        Ok(Watchdog { watched, ticker })
    }

    /// Includes `slot` among the processes the watchdog looks at.
    pub(crate) fn register(&self, slot: &Arc<ProcessSlot>) {
        lock(&self.watched).push(Arc::downgrade(slot));
    }

    /// Watches `slot`'s process under `run`'s deadline and cancel flag,
    /// from now until the returned guard is dropped.
    pub(crate) fn watch<'a>(&self, slot: &'a ProcessSlot, run: &RunLimits) -> Option<Watching<'a>> {
        if !run.is_watched() {
            return None;
        }
        slot.arm(Watch::start(run));
        Some(Watching { slot, _ticking: self.ticker.enter() })
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.slot.disarm();
    }
}
