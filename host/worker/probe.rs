//! The check every pool makes before serving: one instance of the module
//! must instantiate (start function included, under the pool's limits),
//! report this host's ABI version, and survive the init task. Thread pools
//! run it in the host; worker processes run it in each new process.
//!
//! All of that is guest code, so all of it runs under the load deadline
//! (see `PoolBuilder::load_deadline`): a start function, `_initialize`,
//! `wasmpool_abi_version` or init task that never returns fails the build
//! with [`ModuleError::LoadTimeout`] naming it. Thread pools whose own code
//! carries no epoch checks probe such a module in a copy compiled with
//! them ([`interruptible_copy`]), unless its load-time code is sure to
//! return (`LoadCode`); worker processes are killed at the deadline.

use crate::error::LimitExceeded;
use crate::error::{Error, LoadStep, ModuleError, Result, TaskError, TaskFailure};
use crate::runtime::engine::{EngineSettings, create_engine};
use crate::runtime::init::InitCall;
use crate::runtime::instance::{InstanceConfig, Instantiator};
use crate::sandbox::interrupt::{RunLimits, Ticker};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why a module failed the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ProbeFailure {
    /// It did not instantiate (its start function trapped, ran past a limit…).
    Instantiate(TaskFailure),
    /// It implements another ABI version.
    AbiVersion { found: u32 },
    /// The init task failed.
    Init { task: String, failure: TaskFailure },
    /// Guest code run at load did not return in time.
    Timeout { step: LoadStep, limit: Duration },
}

impl ProbeFailure {
    /// The failure of load step `step`: a timeout if it was stopped at its
    /// deadline.
    pub(crate) fn at(step: LoadStep, failure: TaskFailure) -> Self {
        match (step, failure) {
            (step, TaskFailure::Limit(LimitExceeded::Deadline { limit })) => ProbeFailure::Timeout { step, limit },
            (LoadStep::InitTask(task), failure) => ProbeFailure::Init { task, failure },
            (_, failure) => ProbeFailure::Instantiate(failure),
        }
    }
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Instantiate(failure) => write!(f, "the module cannot be instantiated: {failure}"),
            ProbeFailure::AbiVersion { found } => {
                write!(f, "the module implements ABI version {found}, not {}", wasmpool_abi::ABI_VERSION)
            }
            ProbeFailure::Init { task, failure } => {
                write!(f, "init task `{}` failed: {failure}", crate::text::EscapedLine(task))
            }
            ProbeFailure::Timeout { step, limit } => write!(f, "its {step} did not return within {limit:?}"),
        }
    }
}

/// Instantiates the module once under `run`'s limits and checks it,
/// telling `entering` before each step that runs guest code.
pub(crate) fn probe(
    instantiator: &Instantiator,
    init: Option<&InitCall>,
    run: &RunLimits,
    entering: &mut dyn FnMut(&LoadStep),
) -> Result<(), ProbeFailure> {
    let _ticking = instantiator.tick_guard(run);
    let mut instance =
        instantiator.instantiate_reporting(run, entering).map_err(|(step, failure)| ProbeFailure::at(step, failure))?;
    entering(&LoadStep::AbiVersion);
    let version = instance.abi_version().map_err(|failure| ProbeFailure::at(LoadStep::AbiVersion, failure))?;
    if version != wasmpool_abi::ABI_VERSION {
        return Err(ProbeFailure::AbiVersion { found: version });
    }
    if let Some(init) = init {
        let step = LoadStep::InitTask(init.task.clone());
        entering(&step);
        instance.call(&init.export, &init.args, init.seed, None).map_err(|failure| ProbeFailure::at(step, failure))?;
    }
    Ok(())
}

/// An instantiator of the module compiled once more, with epoch checks and
/// a ticker of its own, for probing under a deadline in a pool whose code
/// has no checks. Compiled through the module cache, like the pool's own.
pub(crate) fn interruptible_copy(
    settings: &EngineSettings,
    wasm: &[u8],
    cache_dir: Option<&Path>,
    config: &InstanceConfig,
    origin: &str,
) -> Result<Instantiator> {
    let settings = EngineSettings { epoch_interruption: true, instance_slots: 1, ..settings.clone() };
    let (engine, _) = create_engine(&settings)?;
    let module = crate::runtime::cache::compile(&engine, wasm, cache_dir).map_err(|e| Error::InvalidModule {
        origin: origin.to_owned(),
        cause: ModuleError::Compile(format!("{e:#}")),
    })?;
    let epochs = engine.clone();
    let ticker = Ticker::start("wasmpool-load-probe", move || epochs.increment_epoch())
        .map_err(|e| Error::System(format!("cannot start the load deadline's thread: {e}")))?;
    let config = InstanceConfig { epoch_checks: true, ..config.clone() };
    Instantiator::new(&engine, &module, config, Some(Arc::new(ticker)))
        .map_err(|e| Error::InvalidModule { origin: origin.to_owned(), cause: ModuleError::Instantiation(e) })
}

/// The error `build` reports for a failed probe of the module from `origin`.
pub(crate) fn probe_error(origin: &str, failure: ProbeFailure) -> Error {
    let invalid = |cause| Error::InvalidModule { origin: origin.to_owned(), cause };
    match failure {
        ProbeFailure::Instantiate(TaskFailure::Limit(limit)) => invalid(ModuleError::Limit(limit)),
        // Said once: "it cannot be instantiated: <why>".
        ProbeFailure::Instantiate(TaskFailure::Instantiate(why)) => invalid(ModuleError::Instantiation(why)),
        ProbeFailure::Instantiate(failure) => invalid(ModuleError::Instantiation(failure.to_string())),
        ProbeFailure::AbiVersion { found } => {
            invalid(ModuleError::AbiVersion { found, expected: wasmpool_abi::ABI_VERSION })
        }
        ProbeFailure::Init { task, failure } => Error::Task(TaskError { task, index: 0, failure }),
        ProbeFailure::Timeout { step, limit } => invalid(ModuleError::LoadTimeout { step, limit }),
    }
}
