//! A worker thread: takes jobs from the pool's queue (and its own queue, for
//! broadcasts), runs each input in an instance of the module, and replies.

use crate::error::TaskFailure;
use crate::guest_call::{GuestInstance, Instantiator};
use crate::scheduler::jobs::{Item, ItemResult, Job};
use crossbeam_channel::{Receiver, select};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which instance a task runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone)]
pub(crate) struct InitCall {
    pub task: String,
    pub export: String,
    pub args: Vec<u8>,
}

/// What a worker needs to run tasks.
pub(crate) struct Worker {
    pub id: usize,
    pub instantiator: Instantiator,
    pub mode: InstanceMode,
    pub init: Option<Arc<InitCall>>,
    pub closing: Arc<AtomicBool>,
    /// The instance kept in [`InstanceMode::PerWorker`].
    pub kept: Option<GuestInstance>,
}

impl Worker {
    /// Serves jobs until the pool closes its queues.
    pub fn run(mut self, shared: Receiver<Job>, own: Receiver<Job>) {
        loop {
            let job = select! {
                recv(own) -> job => job,
                recv(shared) -> job => job,
            };
            match job {
                Ok(job) => self.serve(job),
                Err(_) => break,
            }
        }
        // The pool is closing: answer whatever is still queued.
        for job in own.try_iter().chain(shared.try_iter()) {
            self.serve(job);
        }
        tracing::debug!(worker = self.id, "worker stopped");
    }

    fn serve(&mut self, job: Job) {
        if job.is_cancelled() {
            return;
        }
        let Job { task, items, reply, cancelled } = job;
        let mut results = Vec::with_capacity(items.len());
        for Item { index, args } in items {
            if cancelled.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return;
            }
            let result = if self.closing.load(Ordering::Relaxed) {
                Err(TaskFailure::PoolClosed)
            } else {
                match args {
                    Ok(args) => self.run_guarded(&task.export, &args),
                    Err(failure) => Err(failure),
                }
            };
            results.push((index, result));
        }
        reply.send(results);
    }

    /// Runs one task; a bug in the host (a panic) costs this task only.
    fn run_guarded(&mut self, export: &str, args: &[u8]) -> ItemResult {
        match catch_unwind(AssertUnwindSafe(|| self.run_one(export, args))) {
            Ok(result) => result,
            Err(panic) => {
                self.kept = None;
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(worker = self.id, %message, "internal error while running a task");
                Err(TaskFailure::Abi(format!("internal error in the wasmpool host: {message}")))
            }
        }
    }

    fn run_one(&mut self, export: &str, args: &[u8]) -> ItemResult {
        match self.mode {
            InstanceMode::FreshPerTask => self.new_instance()?.call(export, args),
            InstanceMode::PerWorker => {
                let instance = match &mut self.kept {
                    Some(instance) => instance,
                    None => self.kept.insert(self.new_instance()?),
                };
                let result = instance.call(export, args);
                if matches!(result, Err(TaskFailure::Panic { .. } | TaskFailure::Trap { .. } | TaskFailure::Abi(_))) {
                    // Its memory may be half-updated: start the next task afresh.
                    self.kept = None;
                }
                result
            }
        }
    }

    /// A new instance, with the init task (if any) already run in it.
    fn new_instance(&self) -> Result<GuestInstance, TaskFailure> {
        let mut instance = self.instantiator.instantiate()?;
        if let Some(init) = &self.init {
            instance
                .call(&init.export, &init.args)
                .map_err(|failure| TaskFailure::Init { task: init.task.clone(), failure: Box::new(failure) })?;
        }
        Ok(instance)
    }
}
