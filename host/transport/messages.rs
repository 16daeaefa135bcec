//! The messages of the worker-process protocol.
//!
//! ```text
//! host                                   worker process
//!  │── Request::Hello {version, module} ──▶│ loads the precompiled module
//!  │◀── Reply::Loaded / Refused ───────────│
//!  │   (the host's watchdog starts)        │ probes one instance
//!  │◀── Reply::Ready {pid} / ProbeFailed ──│
//!  │── Request::Run {export, args, seed, ──▶│ runs one task
//!  │            fuel, messages, progress}  │
//!  │◀── Reply::Sent(message or progress) ──│ (any number, as the task
//!  │                                       │  sends them, if wanted)
//!  │◀── Reply::Done(outcome) ──────────────│
//!  │   (or, past its deadline or when      │
//!  │    cancelled, the host kills it)      │
//!  │◀── or Reply::Fatal {reason}, exit 3 ──│ after an ABI violation
//!  │   … (Runs run one at a time, in order)│
//!  │   stdin closed ──────────────────────▶│ exits
//! ```
//!
//! Within a chunk of a map, the host sends the `Run`s of the next inputs
//! along with the current one (at most [`MAX_AHEAD`] of them, with at most
//! [`AHEAD_BYTES`] of arguments), so the process starts each as soon as it
//! has replied to the one before, without waiting for the host; the host
//! sends more once it has read every reply. The process reads requests on
//! a thread of its own into a queue with room for all of them, so its
//! stdin never fills while it writes replies. The host watches each input's
//! deadline from the reply of the one before it. If the process dies, what
//! was sent ahead is sent again to the new one; if the job is cancelled,
//! the host kills the process rather than wait for inputs nobody wants.

use crate::channel::Sent;
use crate::engine::EngineSettings;
use crate::executor::{InitCall, InstanceMode};
use crate::guest_call::{InstanceConfig, Outcome};
use crate::probe::ProbeFailure;
use serde::{Deserialize, Serialize};

/// How many inputs the host sends ahead of the running one, at most.
pub(crate) const MAX_AHEAD: usize = 64;

/// How many bytes of arguments the host sends ahead, at most (an input
/// larger than this is sent when its turn comes).
pub(crate) const AHEAD_BYTES: usize = 1 << 20;

/// Version of this protocol; host and worker must agree exactly.
pub(crate) const PROTOCOL_VERSION: u32 = 5;

/// What the host sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The first message: who the worker is and what it runs.
    Hello(Box<Hello>),
    /// Run one task and reply with [`Reply::Done`] (after any
    /// [`Reply::Sent`]).
    Run(RunRequest),
}

/// One task for a worker process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunRequest {
    /// The task's export name.
    pub export: String,
    /// The postcard-encoded arguments.
    pub args: Vec<u8>,
    /// The task's seed.
    pub seed: u64,
    /// The task's fuel budget, if the pool meters fuel.
    pub fuel: Option<u64>,
    /// Whether the host wants the task's messages (else `send` drops them).
    pub messages: bool,
    /// Whether the host wants the task's progress reports.
    pub progress: bool,
}

/// Everything a worker process needs to serve a pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub protocol: u32,
    /// The host's wasmpool version: the worker executable must match it.
    pub wasmpool_version: String,
    /// The worker's number in its pool, for messages.
    pub worker: usize,
    /// The precompiled module (see `cache.rs`) and its checksum.
    pub artifact: String,
    pub checksum: [u8; 32],
    pub engine: EngineSettings,
    pub instance: InstanceConfig,
    pub mode: InstanceMode,
    pub init: Option<InitCall>,
}

/// What the worker process sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The module is loaded; the worker now probes an instance of it.
    Loaded,
    /// The probe failed: the module cannot serve this pool.
    ProbeFailed(ProbeFailure),
    /// The module is loaded and probed; tasks may come.
    Ready {
        /// The worker's process id.
        pid: u32,
    },
    /// The worker cannot serve this pool (version mismatch, bad artifact).
    Refused {
        /// Why, for the host's error message.
        reason: String,
    },
    /// Something the running task sent; a task's [`Reply::Done`] follows
    /// all of its own.
    Sent(Sent),
    /// One task's result and output.
    Done(Outcome),
    /// The worker is about to exit on purpose: the guest broke the ABI, so
    /// the process is not trusted with another task.
    Fatal {
        /// What happened, for the host's error message.
        reason: String,
    },
}
