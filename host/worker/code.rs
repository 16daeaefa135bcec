//! A worker's task code, whichever its kind: one enum over the two
//! runners, each operation matched once here (crossbeam-channel's
//! `SenderFlavor` is the model). Thread workers and worker processes both
//! run their inputs through a [`WorkerCode`]; nothing above this file
//! tells a core module's worker from a task component's.

use crate::runtime::instance::Outcome;
use crate::runtime::outbox::Outbox;
use crate::sandbox::interrupt::RunLimits;
use crate::worker::component::ComponentTasks;
use crate::worker::executor::Executor;
use crate::worker::{Ahead, ItemRunner, TaskContext};

/// What runs one worker's inputs.
#[allow(clippy::large_enum_variant, reason = "one per worker, never moved in a loop")]
pub(crate) enum WorkerCode {
    /// A core module's tasks, in the instance the pool's mode calls for.
    Module(Executor),
    /// A task component's tasks, in the instance the pool's mode calls for.
    Component(ComponentTasks),
}

impl WorkerCode {
    /// Runs one input of the task exported as `export` (a component's
    /// tasks take JSON: `wasmpool_json_<task>`) with its seed and outbox,
    /// under `run`'s limits. A bug in the host (a panic) costs this input
    /// only.
    pub(crate) fn run(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Outcome {
        match self {
            WorkerCode::Module(executor) => executor.run(export, args, seed, outbox, run),
            WorkerCode::Component(tasks) => tasks.run(export, args, seed, outbox, run),
        }
    }

    /// Puts back the instance kept for a fresh state, if an input ran in
    /// it: for after the input's result has gone (see [`ItemRunner::tidy`]).
    pub(crate) fn tidy(&mut self) {
        match self {
            WorkerCode::Module(executor) => executor.tidy(),
            WorkerCode::Component(tasks) => tasks.tidy(),
        }
    }
}

impl ItemRunner for WorkerCode {
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        limits: &RunLimits,
        _ahead: Ahead<'_>,
    ) -> Outcome {
        WorkerCode::run(self, export, args, context.seed, context.outbox(), limits)
    }

    fn tidy(&mut self) {
        WorkerCode::tidy(self);
    }
}
