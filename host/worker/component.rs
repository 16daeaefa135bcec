//! Running tasks of a task component in a thread worker: each input is one
//! JSON call in a fresh instance (`runtime::component`).

use crate::error::TaskFailure;
use crate::runtime::component::TaskComponent;
use crate::runtime::instance::Outcome;
use crate::sandbox::interrupt::{RunLimits, Ticker};
use crate::worker::{Ahead, ItemRunner, TaskContext};
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
        let Some(name) = export.strip_prefix(wasmpool_abi::JSON_EXPORT_PREFIX) else {
            return Outcome::bare(Err(TaskFailure::ArgumentTypes(
                "a task component's tasks take JSON arguments: call them through `TaskRef::json`".into(),
            )));
        };
        let Ok(args) = std::str::from_utf8(args) else {
            return Outcome::bare(Err(TaskFailure::BadArguments("the arguments are not UTF-8 JSON".into())));
        };
        let (result, output) = self.component.call_json(name, args, context.seed, context.outbox(), limits);
        Outcome { result: result.map(String::into_bytes), output }
    }
}
