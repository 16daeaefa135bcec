//! Loading a worker's task code, whichever its kind: the compiled code is
//! linked for the pool's instances, checked in a first instance under the
//! load's limits, and becomes the worker's [`WorkerCode`]. Thread workers
//! (`pool::builder`) and worker processes (`process::child`) both load
//! through [`LoadedCode`], so a module and a component go through the same
//! steps, in the same order, with the same failures (a thread pool probes
//! its first worker's code, or for a core module without epoch checks a
//! copy compiled with them; each worker process probes its own):
//!
//! 1. [`LoadedCode::link`]: link the code. A component's start (for tasks
//!    written in Python, the module's top-level code) and its task list run
//!    here, in a first instance; a core module's start function runs in
//!    step 2.
//! 2. [`LoadedCode::probe`]: one instance as every input gets it: a core
//!    module's start function, `_initialize` and ABI version, and for both
//!    kinds the init task.
//! 3. [`LoadedCode::into_worker`]: what runs the worker's inputs.

use crate::error::{LoadStep, TaskFailure};
use crate::runtime::code::CompiledCode;
use crate::runtime::component::TaskComponent;
use crate::runtime::init::InitCall;
use crate::runtime::instance::{InstanceConfig, Instantiator};
use crate::runtime::module::TaskInfo;
use crate::sandbox::interrupt::{RunLimits, Ticker};
use crate::worker::code::WorkerCode;
use crate::worker::component::ComponentTasks;
use crate::worker::executor::{Executor, InstanceMode};
use crate::worker::probe::{ProbeFailure, probe};
use std::sync::Arc;
use wasmtime::Engine;

/// A worker's code, linked and ready to be checked and to serve.
pub(crate) struct LoadedCode {
    linked: Linked,
    /// The init task every new instance runs before its first input.
    init: Option<Arc<InitCall>>,
}

/// The one match on the code kind when loading.
#[allow(clippy::large_enum_variant, reason = "one per worker, moved a few times at load")]
enum Linked {
    Module(Instantiator),
    Component {
        component: TaskComponent,
        /// Bumps the engine's epoch while guest code runs under a deadline:
        /// at load in the host, and for thread workers' watched tasks.
        /// Worker processes are killed instead.
        ticker: Option<Arc<Ticker>>,
    },
}

impl LoadedCode {
    /// Links `code` (compiled by `engine`) for instances made under
    /// `config`. A component's start and task list run here, under `run`'s
    /// limits (the load's), `announce` told first; `ticker` (thread
    /// workers with epoch checks) keeps their deadlines.
    pub(crate) fn link(
        engine: &Engine,
        code: &CompiledCode,
        config: &InstanceConfig,
        ticker: Option<Arc<Ticker>>,
        run: &RunLimits,
        announce: &mut dyn FnMut(&LoadStep),
    ) -> Result<Self, ProbeFailure> {
        code.prepare_memory_images().map_err(|e| ProbeFailure::Instantiate(TaskFailure::Instantiate(e)))?;
        let linked = match code {
            CompiledCode::Module(module) => Instantiator::new(engine, module, config.clone(), ticker)
                .map(Linked::Module)
                .map_err(|e| ProbeFailure::Instantiate(TaskFailure::Instantiate(e)))?,
            CompiledCode::Component(component) => {
                announce(&LoadStep::TaskList);
                let wasi = config.wasi.clone().unwrap_or_default();
                let start = config.component_start.as_deref();
                let limits = config.limits.clone();
                let loaded = {
                    let _ticking = ticker.as_ref().map(|ticker| ticker.enter());
                    TaskComponent::new(engine, component, limits, wasi, config.epoch_checks, start, run)
                };
                let component = loaded.map_err(|failure| ProbeFailure::at(LoadStep::TaskList, failure))?;
                Linked::Component { component: component.with_resets(config.component_reset), ticker }
            }
        };
        Ok(LoadedCode { linked, init: None })
    }

    /// The tasks the code listed while it was linked: a component's (a
    /// core module's come from its task records, read at compile).
    pub(crate) fn listed_tasks(&self) -> Option<&[TaskInfo]> {
        match &self.linked {
            Linked::Module(_) => None,
            Linked::Component { component, .. } => Some(&component.tasks),
        }
    }

    /// What later instances of this code may start from instead of
    /// `InstanceConfig::component_start`: a component's start may answer
    /// with an equivalent that costs less (tasks written in Python: the
    /// module's compiled code), which later loads reuse.
    pub(crate) fn start_for_later_loads(&self) -> Option<&str> {
        match &self.linked {
            Linked::Module(_) => None,
            Linked::Component { component, .. } => Some(component.start()).filter(|start| !start.is_empty()),
        }
    }

    /// Every new instance runs `init` before its first input.
    pub(crate) fn with_init(mut self, init: Option<Arc<InitCall>>) -> Self {
        if let Linked::Component { component, ticker } = self.linked {
            self.linked = Linked::Component { component: component.with_init(init.clone()), ticker };
        }
        self.init = init;
        self
    }

    /// Makes one instance as an input would get it, under `run`'s limits,
    /// and checks it (`announce` told before each step that runs guest
    /// code): a core module's start function, `_initialize` and ABI
    /// version; the init task, for both kinds.
    pub(crate) fn probe(&self, run: &RunLimits, announce: &mut dyn FnMut(&LoadStep)) -> Result<(), ProbeFailure> {
        match &self.linked {
            Linked::Module(instantiator) => probe(instantiator, self.init.as_deref(), run, announce),
            Linked::Component { component, ticker } => {
                let Some(init) = &self.init else { return Ok(()) };
                announce(&LoadStep::InitTask(init.task.clone()));
                let _ticking = ticker.as_ref().map(|ticker| ticker.enter());
                component.probe_init(run).map_err(|failure| match failure {
                    TaskFailure::Init { task, failure } => ProbeFailure::at(LoadStep::InitTask(task), *failure),
                    // The instance failed before its init task ran.
                    other => ProbeFailure::at(LoadStep::StartFunction, other),
                })
            }
        }
    }

    /// What runs the worker's inputs, in the instances `mode` calls for.
    pub(crate) fn into_worker(self, mode: InstanceMode) -> WorkerCode {
        match self.linked {
            Linked::Module(instantiator) => WorkerCode::Module(Executor::new(instantiator, mode, self.init)),
            Linked::Component { component, ticker } => {
                WorkerCode::Component(ComponentTasks::new(component, mode, ticker))
            }
        }
    }
}
