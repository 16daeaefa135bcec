//! What every store the runtime makes holds and does, for a core module's
//! instance (`instance.rs`) and a task component's (`component.rs`) alike:
//! the memory limiter, the running task's deadline watch, fuel and outbox,
//! and, written once for both code kinds, making such a store, arming it
//! for a task, delivering what the task sends, and telling a call the
//! sandbox stopped. Each code kind keeps beside it only what it alone has
//! (a core module's panic report and WASI preview 1; a component's WASI
//! preview 2 and seed).

use crate::error::{LimitExceeded, TaskFailure};
use crate::runtime::outbox::{Outbox, Sent};
use crate::sandbox::interrupt::{Interrupted, RunLimits, Watch};
use crate::sandbox::limiter::GuestLimiter;
use crate::sandbox::limits::Limits;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// The part of a store's state every code kind has.
pub(crate) struct StoreCore {
    /// Caps memory and table growth.
    pub limiter: GuestLimiter,
    /// The running task's deadline and cancel flag.
    pub watch: Watch,
    /// The running task's fuel budget, if fuel is metered.
    pub fuel: Option<u64>,
    /// Where the running task's messages go, if anyone listens.
    pub outbox: Option<Box<dyn Outbox>>,
}

/// A store's state that holds a [`StoreCore`].
pub(crate) trait WithCore: Sized + Send + 'static {
    fn core(&self) -> &StoreCore;
    fn core_mut(&mut self) -> &mut StoreCore;
}

impl StoreCore {
    /// The core of a new store: `limiter`, no task yet.
    pub(crate) fn new(limiter: GuestLimiter) -> Self {
        StoreCore { limiter, watch: Watch::default(), fuel: None, outbox: None }
    }

    /// A store of `state` for `engine`, with its limiter and, with
    /// `epoch_checks`, the epoch callback that stops the running task at
    /// its deadline or when it is cancelled.
    pub(crate) fn store<T: WithCore>(engine: &Engine, state: T, epoch_checks: bool) -> Store<T> {
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.core_mut().limiter);
        if epoch_checks {
            store.epoch_deadline_callback(|ctx| match ctx.data().core().watch.check() {
                Some(why) => Err(wasmtime::Error::new(why)),
                None => Ok(UpdateDeadline::Continue(1)),
            });
        }
        store
    }

    /// Arms `store` for a task starting now, under `run`'s limits: what an
    /// earlier task left (a growth refused and survived) is forgotten, and
    /// its deadline, epoch and fuel (`pool_fuel` is the pool's budget, if
    /// fuel is metered) start afresh.
    pub(crate) fn arm<T: WithCore>(
        store: &mut Store<T>,
        epoch_checks: bool,
        pool_fuel: Option<u64>,
        run: &RunLimits,
    ) -> Result<(), TaskFailure> {
        let core = store.data_mut().core_mut();
        core.limiter.take_refusal();
        core.watch = Watch::start(run);
        if epoch_checks {
            store.set_epoch_deadline(1);
        }
        if pool_fuel.is_some() {
            let fuel = run.fuel.or(pool_fuel).unwrap_or(u64::MAX);
            store.set_fuel(fuel).map_err(|e| TaskFailure::Instantiate(format!("{e:#}")))?;
            store.data_mut().core_mut().fuel = Some(fuel);
        }
        Ok(())
    }

    /// Hands what the running task sent to its outbox: whether someone
    /// received it, or the reason the task must stop (its deadline passed
    /// or it was cancelled while waiting for room).
    pub(crate) fn deliver(&mut self, sent: Sent) -> wasmtime::Result<bool> {
        let StoreCore { outbox, watch, .. } = self;
        match outbox.as_mut().map(|outbox| outbox.deliver(sent, watch)) {
            Some(Ok(delivered)) => Ok(delivered),
            None => Ok(false),
            Some(Err(why)) => Err(wasmtime::Error::new(why)),
        }
    }
}

/// The task's failure if the sandbox stopped the call from the host's
/// side: interrupted (deadline, cancelled) or a limit a host function
/// enforced (output, messages). The first thing either code kind's
/// classification asks.
pub(crate) fn stopped_by_host(error: &wasmtime::Error) -> Option<TaskFailure> {
    if let Some(&why) = error.downcast_ref::<Interrupted>() {
        return Some(why.into());
    }
    error.downcast_ref::<LimitExceeded>().map(|limit| TaskFailure::Limit(limit.clone()))
}

/// The task's failure if the call trapped on a limit the engine enforces:
/// fuel (`core`'s budget) or the native stack.
pub(crate) fn engine_limit(error: &wasmtime::Error, core: &StoreCore, limits: &Limits) -> Option<TaskFailure> {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Some(TaskFailure::Limit(LimitExceeded::Fuel { limit: core.fuel.unwrap_or_default() })),
        Some(Trap::StackOverflow) => Some(TaskFailure::Limit(LimitExceeded::Stack { limit: limits.max_stack })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct State(StoreCore);

    impl WithCore for State {
        fn core(&self) -> &StoreCore {
            &self.0
        }
        fn core_mut(&mut self) -> &mut StoreCore {
            &mut self.0
        }
    }

    #[test]
    fn an_armed_store_has_the_runs_fuel_or_the_pools() {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).unwrap();
        let mut store = StoreCore::store(&engine, State(StoreCore::new(GuestLimiter::new(1 << 20, 10, None))), false);
        StoreCore::arm(&mut store, false, Some(500), &RunLimits::default()).unwrap();
        assert_eq!((store.get_fuel().unwrap(), store.data().0.fuel), (500, Some(500)));
        let run = RunLimits { fuel: Some(7), deadline: Some(Duration::from_secs(1)), ..RunLimits::default() };
        StoreCore::arm(&mut store, false, Some(500), &run).unwrap();
        assert_eq!((store.get_fuel().unwrap(), store.data().0.fuel), (7, Some(7)));
    }

    #[test]
    fn without_an_outbox_nothing_is_delivered_and_the_task_goes_on() {
        let mut core = StoreCore::new(GuestLimiter::new(1 << 20, 10, None));
        assert!(!core.deliver(Sent::Progress { done: 1, total: 2 }).unwrap());
    }

    #[test]
    fn the_host_and_the_engine_stopping_a_call_are_told_apart() {
        let core = StoreCore { fuel: Some(9), ..StoreCore::new(GuestLimiter::new(1 << 20, 10, None)) };
        let limits = Limits::default();
        let fuel = wasmtime::Error::new(Trap::OutOfFuel);
        assert_eq!(engine_limit(&fuel, &core, &limits), Some(TaskFailure::Limit(LimitExceeded::Fuel { limit: 9 })));
        assert_eq!(stopped_by_host(&fuel), None);
        let cancelled = wasmtime::Error::new(Interrupted::Cancelled);
        assert_eq!(stopped_by_host(&cancelled), Some(TaskFailure::Cancelled));
        assert_eq!(engine_limit(&wasmtime::Error::msg("other"), &core, &limits), None);
    }
}
