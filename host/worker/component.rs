//! Running tasks of a task component: each input is one JSON call
//! (`runtime::component`), in a fresh instance or, in
//! [`InstanceMode::PerWorker`], in the instance the worker keeps. Thread
//! workers and worker processes both run inputs through [`ComponentTasks`],
//! inside a [`WorkerCode`](crate::worker::code::WorkerCode).

use crate::error::TaskFailure;
use crate::runtime::component::{KeptInstance, ResetSlot, TaskComponent};
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::Outbox;
use crate::sandbox::interrupt::{RunLimits, Ticker};
use crate::worker::executor::{InstanceMode, host_bug};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// One worker's component and the instance it keeps: in
/// [`InstanceMode::PerWorker`] with its state carried from input to input,
/// in [`InstanceMode::FreshPerTask`] put back between inputs (where the
/// component allows: `TaskComponent::with_resets`).
pub(crate) struct ComponentTasks {
    component: TaskComponent,
    mode: InstanceMode,
    kept: Option<KeptInstance>,
    reset: ResetSlot,
    /// Thread workers: bumps the engine's epoch while a watched task runs
    /// (deadlines, cancelling). Worker processes are killed instead.
    ticker: Option<Arc<Ticker>>,
}

impl ComponentTasks {
    /// Puts the instance kept for a fresh state back as it was, if an
    /// input ran in it: called once the input's result has gone, so that
    /// the caller does not wait for it. A bug in the host (a panic) drops
    /// the instance.
    pub(crate) fn tidy(&mut self) {
        let ComponentTasks { component, reset, .. } = self;
        if catch_unwind(AssertUnwindSafe(|| component.tidy(reset))).is_err() {
            tracing::error!("internal error while resetting an instance; the next input gets a new one");
            self.reset = ResetSlot::default();
        }
    }

    pub(crate) fn new(component: TaskComponent, mode: InstanceMode, ticker: Option<Arc<Ticker>>) -> Self {
        ComponentTasks { component, mode, kept: None, reset: ResetSlot::default(), ticker }
    }

    /// Runs the input for `export` (`wasmpool_json_<task>`, as the pool
    /// names JSON calls). A bug in the host (a panic) costs this task only.
    pub(crate) fn run(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        limits: &RunLimits,
    ) -> Outcome {
        let Some(name) = export.strip_prefix(wasmpool_abi::JSON_EXPORT_PREFIX) else {
            return Outcome::bare(Err(TaskFailure::ArgumentTypes(
                "a task component's tasks take JSON arguments: call them through `TaskRef::json`".into(),
            )));
        };
        let Ok(args) = std::str::from_utf8(args) else {
            return Outcome::bare(Err(TaskFailure::BadArguments("the arguments are not UTF-8 JSON".into())));
        };
        let _ticking = self.ticker.as_ref().filter(|_| limits.is_watched()).map(|ticker| ticker.enter());
        let ComponentTasks { component, mode, kept, reset, .. } = self;
        let call = || match mode {
            InstanceMode::FreshPerTask => component.call_json_fresh(reset, name, args, seed, outbox, limits),
            InstanceMode::PerWorker => component.call_json_in(kept, name, args, seed, outbox, limits),
        };
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok((result, output)) => Outcome { result: result.map(String::into_bytes), output },
            Err(panic) => {
                self.kept = None;
                self.reset = ResetSlot::default();
                host_bug(&*panic)
            }
        }
    }
}
