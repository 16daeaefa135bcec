//! Running one task in an instance of the module, in whichever instance
//! the [`InstanceMode`] calls for. Thread workers and worker processes both
//! run tasks through an [`Executor`].

use crate::error::TaskFailure;
use crate::runtime::fresh_state::Snapshot;
use crate::runtime::init::InitCall;
use crate::runtime::instance::{GuestInstance, Instantiator, Outcome};
use crate::runtime::outbox::Outbox;
use crate::sandbox::interrupt::RunLimits;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Which instance a task runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InstanceMode {
    /// Every task gets the module's initial state (the default): no task
    /// sees another's globals or heap, a failed task leaves nothing behind,
    /// and results cannot depend on which worker ran what. Where it can,
    /// a worker resets one instance in place between tasks rather than
    /// creating one per task (see `PoolBuilder::reset_in_place`).
    #[default]
    FreshPerTask,
    /// Each worker keeps one instance and runs all its tasks in it, so
    /// module state (globals, heap) carries over from task to task on that
    /// worker. An instance whose task trapped or panicked is replaced (and
    /// the init task run again) before the worker's next task.
    PerWorker,
}

/// Runs tasks for one worker: owns the kept instance, if any.
pub(crate) struct Executor {
    pub instantiator: Instantiator,
    pub mode: InstanceMode,
    pub init: Option<Arc<InitCall>>,
    /// The instance kept in [`InstanceMode::PerWorker`].
    kept: Option<GuestInstance>,
    /// In [`InstanceMode::FreshPerTask`], the instance reset in place
    /// between tasks and the state it returns to.
    reused: Option<(GuestInstance, Snapshot)>,
    /// Whether `reused` ran a task since its last reset.
    dirty: bool,
    /// Whether instances may be reset in place: cleared for good when a
    /// snapshot cannot be taken.
    may_reset: bool,
}

impl Executor {
    pub(crate) fn new(instantiator: Instantiator, mode: InstanceMode, init: Option<Arc<InitCall>>) -> Self {
        Executor { instantiator, mode, init, kept: None, reused: None, dirty: false, may_reset: true }
    }

    /// Runs one task with its seed and outbox (where its messages go)
    /// under `run`'s limits; a bug in the host (a panic) costs this task
    /// only.
    pub(crate) fn run(
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
                self.reused = None;
                host_bug(&*panic)
            }
        }
    }

    fn run_one(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        mut outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Outcome {
        match self.mode {
            InstanceMode::FreshPerTask => {
                if let Some(outcome) = self.run_in_reset_instance(export, args, seed, &mut outbox, run) {
                    return outcome;
                }
                match self.new_instance(run) {
                    Ok(mut instance) => {
                        let result = instance.call(export, args, seed, outbox);
                        Outcome { result, output: instance.take_output() }
                    }
                    Err(failure) => Outcome::bare(Err(failure)),
                }
            }
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

    /// Runs the task in the instance reset in place, creating it (and its
    /// snapshot) first if need be. `None` (with `outbox` untouched) if
    /// instances are not reset in place: the caller creates one.
    fn run_in_reset_instance(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: &mut Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Option<Outcome> {
        if !self.may_reset || self.instantiator.image().is_none() {
            return None;
        }
        self.restore_if_dirty();
        let (instance, _) = match &mut self.reused {
            Some(reused) => match reused.0.rearm(run) {
                Ok(()) => reused,
                Err(failure) => return Some(Outcome::bare(Err(failure))),
            },
            None => {
                let mut instance = match self.new_instance(run) {
                    Ok(instance) => instance,
                    Err(failure) => return Some(Outcome::bare(Err(failure))),
                };
                match instance.snapshot(self.instantiator.image()) {
                    Ok(Some(snapshot)) => self.reused.insert((instance, snapshot)),
                    unavailable => {
                        // No scanner, or an instance the reset cannot
                        // handle: a new instance for every task from now on.
                        let why =
                            unavailable.err().map_or_else(|| "no way to find the pages a task writes".into(), |e| e.0);
                        tracing::debug!("instances are not reset in place on this worker: {why}");
                        self.may_reset = false;
                        let result = instance.call(export, args, seed, outbox.take());
                        return Some(Outcome { result, output: instance.take_output() });
                    }
                }
            }
        };
        let result = instance.call(export, args, seed, outbox.take());
        let output = instance.take_output();
        if result.as_ref().is_err_and(leaves_instance_suspect) {
            self.reused = None;
        } else {
            self.dirty = true;
        }
        Some(Outcome { result, output })
    }

    /// Puts the instance reset in place back in its initial state, if a
    /// task ran in it since: called once the task's result has gone, so
    /// that the caller does not wait for it (and before the next task at
    /// the latest). A bug in the host (a panic) drops the instance.
    pub(crate) fn tidy(&mut self) {
        if catch_unwind(AssertUnwindSafe(|| self.restore_if_dirty())).is_err() {
            tracing::error!("internal error while resetting an instance; the next task gets a new one");
            self.reused = None;
        }
    }

    fn restore_if_dirty(&mut self) {
        if self.dirty
            && let Some((instance, snapshot)) = &mut self.reused
        {
            self.dirty = false;
            if let Err(why) = instance.restore(snapshot) {
                tracing::debug!("a new instance replaces the one that cannot be reset: {}", why.0);
                self.reused = None;
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
            // What the init task printed is not the next task's output.
            instance.take_output();
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

/// The outcome of a task during which the host itself panicked (a bug in
/// wasmpool, caught so that it costs this task only): logged, and the task
/// fails with the panic's message.
pub(crate) fn host_bug(panic: &(dyn std::any::Any + Send)) -> Outcome {
    let message = panic_text(panic);
    tracing::error!(%message, "internal error while running a task");
    Outcome::bare(Err(TaskFailure::Abi(format!("internal error in the wasmpool host: {message}"))))
}

/// What a panic said, if it said it as text.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::engine::{Allocator, EngineSettings, create_engine};
    use crate::runtime::fresh_state::dirty_pages::DirtyPages;
    use crate::runtime::instance::InstanceConfig;
    use crate::runtime::module::TaskModule;
    use crate::sandbox::limits::Limits;

    /// An executor of the demo module's tasks giving each a fresh state,
    /// resetting its instance in place if `reset` (finding the pages written
    /// by the marks writes leave if `marks`, else with the kernel's scan).
    fn executor(reset: bool, marks: bool) -> Executor {
        let limits = Limits::default();
        let settings = EngineSettings {
            allocator: Allocator::Auto,
            component: false,
            instance_slots: 2,
            max_memory: limits.max_memory,
            max_table_elements: limits.max_table_elements,
            max_stack: limits.max_stack,
            epoch_interruption: false,
            consume_fuel: false,
        };
        let engine = create_engine(&settings).unwrap().0;
        let wasm = std::fs::read(guest_tasks::WASM_PATH).unwrap();
        let rules = crate::runtime::module::ModuleRules { limits: limits.clone(), marks, ..Default::default() };
        let module = TaskModule::compile_cached(&engine, &wasm, "guest_tasks".into(), None, &rules).unwrap();
        let plan = module.reset.clone().expect("the demo module can be reset in place");
        assert_eq!(plan.marks, marks);
        let config = InstanceConfig {
            limits,
            epoch_checks: false,
            wasi: None,
            stack_pointer: module.stack_pointer,
            reset: reset.then_some(plan),
            component_reset: false,
            component_start: None,
        };
        let instantiator = Instantiator::new(&engine, &module.module, config, None).unwrap();
        Executor::new(instantiator, InstanceMode::FreshPerTask, None)
    }

    fn run<A: Serialize>(executor: &mut Executor, task: &str, args: A) -> Vec<u8> {
        let args = postcard::to_allocvec(&args).unwrap();
        let export = wasmpool_abi::task_export_name(task);
        executor.run(&export, &args, 1, None, &RunLimits::default()).result.unwrap()
    }

    #[test]
    fn the_instance_is_reset_in_place_and_tasks_see_a_fresh_state() {
        check_resets(executor(true, true));
        if DirtyPages::get().is_some() {
            check_resets(executor(true, false));
        } else {
            eprintln!("SKIPPED (scan only): this system has no PAGEMAP_SCAN");
        }
    }

    fn check_resets(mut executor: Executor) {
        let pages = run(&mut executor, "memory_pages", ());
        for round in 0..5 {
            assert_eq!(run(&mut executor, "counter_next", ()), [1], "round {round}");
            assert!(executor.reused.is_some() && executor.may_reset, "round {round}: the instance is kept");
        }
        // A task that grows the memory leaves an instance that cannot be
        // reset: the next task gets a new one, with the initial size.
        run(&mut executor, "allocate", 8u64 << 20);
        assert_eq!(run(&mut executor, "memory_pages", ()), pages);
        assert_eq!(run(&mut executor, "counter_next", ()), [1]);
        // So does a task that panics.
        let export = wasmpool_abi::task_export_name("divide");
        let args = postcard::to_allocvec(&(1i64, 0i64)).unwrap();
        assert!(executor.run(&export, &args, 1, None, &RunLimits::default()).result.is_err());
        assert!(executor.reused.is_none());
        assert_eq!(run(&mut executor, "counter_next", ()), [1]);
        assert!(executor.reused.is_some());
    }

    #[test]
    fn without_a_reset_plan_every_task_gets_a_new_instance() {
        let mut executor = executor(false, true);
        for _ in 0..3 {
            assert_eq!(run(&mut executor, "counter_next", ()), [1]);
            assert!(executor.reused.is_none());
        }
    }
}
