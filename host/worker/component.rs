//! Running tasks of a task component in a thread worker: each input is one
//! JSON call in a fresh instance (`runtime::component`).

use crate::error::TaskFailure;
use crate::runtime::component::TaskComponent;
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::Outbox;
use crate::sandbox::interrupt::{RunLimits, Ticker};
use crate::worker::{Ahead, ItemRunner, TaskContext};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A thread worker's runner over its own loaded copy of the component.
pub(crate) struct ComponentRunner {
    component: TaskComponent,
    /// Bumps the epoch while a watched task runs (deadlines, cancelling).
    ticker: Arc<Ticker>,
}

impl ComponentRunner {
    /// The runner of `component`, whose engine `ticker` ticks.
    pub(crate) fn new(component: TaskComponent, ticker: Arc<Ticker>) -> Self {
        ComponentRunner { component, ticker }
    }
}

impl ItemRunner for ComponentRunner {
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        limits: &RunLimits,
        _ahead: Ahead<'_>,
    ) -> Outcome {
        let _ticking = limits.is_watched().then(|| self.ticker.enter());
        run_component_task(&self.component, export, args, context.seed, context.outbox(), limits)
    }
}

/// Runs the input for `export` (`wasmpool_json_<task>`, as the pool names
/// JSON calls) in a fresh instance of `component`: the runner of thread
/// workers and of worker processes alike. A bug in the host (a panic)
/// costs this task only.
pub(crate) fn run_component_task(
    component: &TaskComponent,
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
    match catch_unwind(AssertUnwindSafe(|| component.call_json(name, args, seed, outbox, limits))) {
        Ok((result, output)) => Outcome { result: result.map(String::into_bytes), output },
        Err(panic) => {
            let message = crate::worker::executor::panic_message(&*panic);
            tracing::error!(%message, "internal error while running a task");
            Outcome::bare(Err(TaskFailure::Abi(format!("internal error in the wasmpool host: {message}"))))
        }
    }
}
