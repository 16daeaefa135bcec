//! The check every pool makes before serving: one instance of the module
//! must instantiate (start function included, under the pool's limits),
//! report this host's ABI version, and survive the init task. Thread pools
//! run it in the host; worker processes run it in each new process.

use crate::error::{Error, ModuleError, TaskError, TaskFailure};
use crate::executor::InitCall;
use crate::guest_call::Instantiator;
use crate::sandbox::interrupt::RunLimits;
use serde::{Deserialize, Serialize};

/// Why a module failed the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ProbeFailure {
    /// It did not instantiate (its start function trapped, ran past a limit…).
    Instantiate(TaskFailure),
    /// It implements another ABI version.
    AbiVersion { found: u32 },
    /// The init task failed.
    Init { task: String, failure: TaskFailure },
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Instantiate(failure) => write!(f, "the module cannot be instantiated: {failure}"),
            ProbeFailure::AbiVersion { found } => {
                write!(f, "the module implements ABI version {found}, not {}", wasmpool_abi::ABI_VERSION)
            }
            ProbeFailure::Init { task, failure } => write!(f, "init task `{task}` failed: {failure}"),
        }
    }
}

/// Instantiates the module once under `run`'s limits and checks it.
pub(crate) fn probe(instantiator: &Instantiator, init: Option<&InitCall>, run: &RunLimits) -> Result<(), ProbeFailure> {
    let _ticking = instantiator.tick_guard(run);
    let mut instance = instantiator.instantiate(run).map_err(ProbeFailure::Instantiate)?;
    let version = instance.abi_version().map_err(ProbeFailure::Instantiate)?;
    if version != wasmpool_abi::ABI_VERSION {
        return Err(ProbeFailure::AbiVersion { found: version });
    }
    if let Some(init) = init {
        instance
            .call(&init.export, &init.args, init.seed, None)
            .map_err(|failure| ProbeFailure::Init { task: init.task.clone(), failure })?;
    }
    Ok(())
}

/// The error `build` reports for a failed probe of the module from `origin`.
pub(crate) fn probe_error(origin: &str, failure: ProbeFailure) -> Error {
    let invalid = |cause| Error::InvalidModule { origin: origin.to_owned(), cause };
    match failure {
        ProbeFailure::Instantiate(TaskFailure::Limit(limit)) => invalid(ModuleError::Limit(limit)),
        ProbeFailure::Instantiate(failure) => invalid(ModuleError::Instantiation(failure.to_string())),
        ProbeFailure::AbiVersion { found } => {
            invalid(ModuleError::AbiVersion { found, expected: wasmpool_abi::ABI_VERSION })
        }
        ProbeFailure::Init { task, failure } => Error::Task(TaskError { task, index: 0, failure }),
    }
}
