//! Running one task in an instance of the module, in whichever instance
//! the [`InstanceMode`] calls for. Thread workers and worker processes both
//! run tasks through an [`Executor`].

use crate::channel::Outbox;
use crate::error::TaskFailure;
use crate::guest_call::{GuestInstance, Instantiator, Outcome};
use crate::sandbox::interrupt::RunLimits;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Which instance a task runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InstanceMode {
    /// Every task gets a freshly instantiated module (the default): no task
    /// sees another's globals or heap, a failed task leaves nothing behind,
    /// and results cannot depend on which worker ran what.
    #[default]
    FreshPerTask,
    /// Each worker keeps one instance and runs all its tasks in it, so
    /// module state (globals, heap) carries over from task to task on that
    /// worker. An instance whose task trapped or panicked is replaced (and
    /// the init task run again) before the worker's next task.
    PerWorker,
}

/// A task run on every new instance before it serves real tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitCall {
    pub task: String,
    pub export: String,
    pub args: Vec<u8>,
    /// The init task's seed: index 0 of the pool's seed.
    pub seed: u64,
}

/// Runs tasks for one worker: owns the kept instance, if any.
pub(crate) struct Executor {
    pub instantiator: Instantiator,
    pub mode: InstanceMode,
    pub init: Option<Arc<InitCall>>,
    /// The instance kept in [`InstanceMode::PerWorker`].
    kept: Option<GuestInstance>,
}

impl Executor {
    pub fn new(instantiator: Instantiator, mode: InstanceMode, init: Option<Arc<InitCall>>) -> Self {
        Executor { instantiator, mode, init, kept: None }
    }

    /// Runs one task with its seed and outbox (where its messages go)
    /// under `run`'s limits; a bug in the host (a panic) costs this task
    /// only.
    pub fn run(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Outcome {
        let _ticking = self.instantiator.tick_guard(run);
        match catch_unwind(AssertUnwindSafe(|| self.run_one(export, args, seed, outbox, run))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                self.kept = None;
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%message, "internal error while running a task");
                Outcome::bare(Err(TaskFailure::Abi(format!("internal error in the wasmpool host: {message}"))))
            }
        }
    }

    fn run_one(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Outcome {
        match self.mode {
            InstanceMode::FreshPerTask => match self.new_instance(run) {
                Ok(mut instance) => {
                    let result = instance.call(export, args, seed, outbox);
                    Outcome { result, output: instance.take_output() }
                }
                Err(failure) => Outcome::bare(Err(failure)),
            },
            InstanceMode::PerWorker => {
                let instance = match &mut self.kept {
                    Some(instance) => match instance.rearm(run) {
                        Ok(()) => instance,
                        Err(failure) => return Outcome::bare(Err(failure)),
                    },
                    None => match self.new_instance(run) {
                        Ok(instance) => self.kept.insert(instance),
                        Err(failure) => return Outcome::bare(Err(failure)),
                    },
                };
                let result = instance.call(export, args, seed, outbox);
                let output = instance.take_output();
                if result.as_ref().is_err_and(leaves_instance_suspect) {
                    // Its memory may be half-updated: start the next task afresh.
                    self.kept = None;
                }
                Outcome { result, output }
            }
        }
    }

    /// A new instance, with the init task (if any) already run in it.
    fn new_instance(&self, run: &RunLimits) -> Result<GuestInstance, TaskFailure> {
        let mut instance = self.instantiator.instantiate(run)?;
        if let Some(init) = &self.init {
            instance
                .call(&init.export, &init.args, init.seed, None)
                .map_err(|failure| TaskFailure::Init { task: init.task.clone(), failure: Box::new(failure) })?;
        }
        Ok(instance)
    }
}

/// Whether a kept instance must be replaced after its task failed this way:
/// anything that stopped the guest midway may have left its memory
/// half-updated. A task that returned `Err`, or whose arguments or result
/// did not decode, finished normally.
fn leaves_instance_suspect(failure: &TaskFailure) -> bool {
    matches!(
        failure,
        TaskFailure::Panic { .. }
            | TaskFailure::Trap { .. }
            | TaskFailure::Abi(_)
            | TaskFailure::Limit(_)
            | TaskFailure::Cancelled
    )
}
