//! The messages of the worker-process protocol.
//!
//! ```text
//! host                                   worker process
//!  │── Request::Hello {version, code} ────▶│ loads the compiled module the
//!  │                                       │ host sends (never a file)
//!  │◀── Reply::Loaded / Refused ───────────│
//!  │   (the load deadline starts)          │ probes one instance:
//!  │◀── Reply::Probing(step) … ────────────│ before each step of guest code
//!  │◀── Reply::Ready / ProbeFailed ────────│
//!  │── Request::Run {id, export, args, ───▶│ runs one task
//!  │       seed, fuel, messages, progress} │
//!  │◀── Reply::Sent {id, message} ─────────│ (any number, as the task
//!  │                                       │  sends them, if wanted)
//!  │◀── Reply::Done {id, outcome} ─────────│
//!  │   (or, past its deadline or when      │
//!  │    cancelled, the host kills it)      │
//!  │◀── or Reply::Fatal {reason}, exit 3 ──│ after an ABI violation
//!  │   … (Runs run one at a time, in order)│
//!  │   stdin closed ──────────────────────▶│ exits
//! ```
//!
//! Each `Run` carries an id, numbered from 0 on each connection, and every
//! reply about an input carries the id of its `Run`: the host checks it
//! against the input it is waiting for, and a process that answers another
//! is treated as broken (replaced, the input retried), never believed.
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
//!
//! Replies are read with a limit derived from the pool's own limits
//! ([`max_reply_len`]), so that every reply a sound worker can send fits,
//! and nothing larger is ever read.

use crate::error::LoadStep;
use crate::runtime::code::CodeKind;
use crate::runtime::engine::EngineSettings;
use crate::runtime::init::InitCall;
use crate::runtime::instance::{InstanceConfig, Outcome};
use crate::runtime::outbox::Sent;
use crate::sandbox::limits::Limits;
use crate::worker::executor::InstanceMode;
use crate::worker::probe::ProbeFailure;
use serde::{Deserialize, Serialize};

/// How many inputs the host sends ahead of the running one, at most.
pub(crate) const MAX_AHEAD: usize = 64;

/// How many bytes of arguments the host sends ahead, at most (an input
/// larger than this is sent when its turn comes).
pub(crate) const AHEAD_BYTES: usize = 1 << 20;

/// Version of this protocol; host and worker must agree exactly.
pub(crate) const PROTOCOL_VERSION: u32 = 10;

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
    /// The input's identity on this connection (0, 1, 2, …), which the
    /// replies about it carry back.
    pub id: u64,
    /// The task's export name.
    pub export: String,
    /// The postcard-encoded arguments.
    #[serde(with = "serde_bytes")]
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
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub protocol: u32,
    /// The host's wasmpool version: the worker executable must match it.
    pub wasmpool_version: String,
    /// The worker's number in its pool, for messages.
    pub worker: usize,
    /// The module's compiled code, as the host's engine serialized it: the
    /// code the host compiled or loaded from its cache itself, so the
    /// process trusts no file.
    #[serde(with = "serde_bytes")]
    pub code: Vec<u8>,
    /// What `code` is: a core module's or a task component's compiled code.
    pub kind: CodeKind,
    pub engine: EngineSettings,
    pub instance: InstanceConfig,
    pub mode: InstanceMode,
    pub init: Option<InitCall>,
}

impl std::fmt::Debug for Hello {
    /// Everything but the compiled code, which is only counted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("protocol", &self.protocol)
            .field("wasmpool_version", &self.wasmpool_version)
            .field("worker", &self.worker)
            .field("code", &format_args!("<{} bytes>", self.code.len()))
            .field("kind", &self.kind)
            .field("engine", &self.engine)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Room in a reply for everything but its buffers: a failure's texts (a
/// message of at most 64 KiB, a location of 4 KiB, 64 frame names of 1 KiB
/// each, possibly nested in an init failure) and the framing.
const REPLY_OVERHEAD: u64 = 1 << 20;

/// The largest reply a sound worker process can send under `limits`: a
/// task's result (at most `max_output`, and no more than its memory holds),
/// with a WASI pool's stdout and stderr (at most `max_output` each), or a
/// message (at most `max_message`), plus [`REPLY_OVERHEAD`]. `None` if that
/// is more than a frame can carry (4 GiB).
pub(crate) fn max_reply_len(limits: &Limits, wasi: bool) -> Option<u32> {
    let output = limits.max_output as u64;
    let result = output.min(limits.max_memory as u64);
    let streams = if wasi { output.saturating_mul(2) } else { 0 };
    let largest = result.saturating_add(streams).max(limits.max_message as u64);
    u32::try_from(largest.saturating_add(REPLY_OVERHEAD)).ok()
}

/// Most text a failure in a sound worker's reply holds: the cuts of
/// `runtime::instance` (a 64 KiB message, a 4 KiB location, 64 frames of
/// 1 KiB) with room to spare, and less than [`REPLY_OVERHEAD`].
pub(crate) const MAX_FAILURE_TEXT: usize = 512 << 10;

/// Why a sound worker under `limits` could not have sent `sent` (it would
/// have stopped the task instead), if it could not: the host then believes
/// nothing more from that process.
pub(crate) fn unbelievable_sent(sent: &Sent, limits: &Limits) -> Option<String> {
    match sent {
        Sent::Message(bytes) if bytes.len() > limits.max_message => {
            Some(format!("a message of {} bytes, over the message limit of {}", bytes.len(), limits.max_message))
        }
        _ => None,
    }
}

/// Why a sound worker (a worker process, or a rank) under the output limit
/// `max_output` could not have sent `outcome`, if it could not: a result or
/// printed output over it, or a failure with more text than the host's
/// cuts keep.
pub(crate) fn unbelievable_outcome(outcome: &Outcome, max_output: usize) -> Option<String> {
    let over = |what: &str, len: usize| {
        (len > max_output).then(|| format!("a {what} of {len} bytes, over the output limit of {max_output}"))
    };
    let result = match &outcome.result {
        Ok(bytes) => over("result", bytes.len()),
        Err(failure) => (failure.text_len() > MAX_FAILURE_TEXT).then(|| {
            format!("a failure of {} bytes of text, over the {MAX_FAILURE_TEXT} a worker keeps", failure.text_len())
        }),
    };
    result
        .or_else(|| over("stdout", outcome.output.stdout.len()))
        .or_else(|| over("stderr", outcome.output.stderr.len()))
}

/// What the worker process sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The module is loaded; the worker now probes an instance of it.
    Loaded,
    /// The probe is about to run this step of guest code (so that a step
    /// that never returns can be named when the host stops it).
    Probing(LoadStep),
    /// The probe failed: the module cannot serve this pool.
    ProbeFailed(ProbeFailure),
    /// The module is loaded and probed; tasks may come. (The host knows
    /// the process's id from the operating system, not from the process.)
    Ready,
    /// The worker cannot serve this pool (version mismatch, bad artifact).
    Refused {
        /// Why, for the host's error message.
        reason: String,
    },
    /// Something the running task sent; a task's [`Reply::Done`] follows
    /// all of its own.
    Sent {
        /// The [`RunRequest::id`] of the task that sent it.
        id: u64,
        /// The message or progress report.
        sent: Sent,
    },
    /// One task's result and output.
    Done {
        /// The [`RunRequest::id`] of the input.
        id: u64,
        /// Its result and output.
        outcome: Outcome,
    },
    /// The worker is about to exit on purpose: the guest broke the ABI, so
    /// the process is not trusted with another task.
    Fatal {
        /// What happened, for the host's error message.
        reason: String,
    },
}

impl Reply {
    /// The reply's kind, for messages about a reply that came out of turn
    /// (its contents may be large, and are the guest's).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Reply::Loaded => "Loaded",
            Reply::Probing(_) => "Probing",
            Reply::ProbeFailed(_) => "ProbeFailed",
            Reply::Ready => "Ready",
            Reply::Refused { .. } => "Refused",
            Reply::Sent { .. } => "Sent",
            Reply::Done { .. } => "Done",
            Reply::Fatal { .. } => "Fatal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_limit_follows_the_pools_limits() {
        let limits = Limits::default();
        let plain = max_reply_len(&limits, false).unwrap();
        assert_eq!(u64::from(plain), limits.max_output as u64 + REPLY_OVERHEAD);
        let wasi = max_reply_len(&limits, true).unwrap();
        assert_eq!(u64::from(wasi), 3 * limits.max_output as u64 + REPLY_OVERHEAD);
        // A result cannot be larger than the memory it is read from.
        let small_memory = Limits { max_memory: 1 << 20, max_output: 1 << 30, ..Limits::default() };
        assert_eq!(u64::from(max_reply_len(&small_memory, false).unwrap()), (1 << 20) + REPLY_OVERHEAD);
        // Output past what a frame carries is refused, not cut.
        let huge = Limits { max_memory: 4 << 30, max_output: 2 << 30, ..Limits::default() };
        assert!(max_reply_len(&huge, false).is_some());
        assert_eq!(max_reply_len(&huge, true), None);
    }
}
