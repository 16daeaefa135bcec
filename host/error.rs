//! The errors a pool reports.
//!
//! Everything that concerns one task call is a [`TaskError`]: it names the
//! task, the index of the input in its map (0 for single calls) and the
//! [`TaskFailure`]. Failures of the pool as a whole (an unreadable or invalid
//! module, a bad configuration, an unknown task name) are the other
//! [`Error`] variants.

use crate::text::{EscapedLine as Line, EscapedText as Text};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pool setting that cannot be read or cannot work, named as the
/// [`Settings`](crate::Settings) field (the Python keyword, the command's
/// option with `-` for `_`), with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", Line(setting), Text(reason))]
pub struct SettingsError {
    /// The setting: a field's name, with a position inside it where the
    /// value is a list (`allow_dir[1]`), or `settings` for the whole value.
    pub setting: String,
    /// Why it was refused.
    pub reason: String,
}

impl SettingsError {
    /// The error for `setting`, refused for `reason`.
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        SettingsError { setting: setting.into(), reason: reason.into() }
    }
}

/// Anything that can go wrong building or using a pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module file could not be read.
    #[error("cannot read task module {}: {source}", Line(&path.display().to_string()))]
    ModuleFile {
        /// The path given to the builder.
        path: PathBuf,
        /// Why reading failed (for example: not found).
        source: std::io::Error,
    },
    /// The bytes are not a usable task module.
    #[error("invalid task module {}: {cause}", Line(origin))]
    InvalidModule {
        /// Where the module came from (a path, or `<bytes>`).
        origin: String,
        /// What is wrong with it.
        cause: ModuleError,
    },
    /// The builder's settings cannot work.
    #[error("invalid pool configuration: {}", Text(.0))]
    Config(String),
    /// A [`Settings`](crate::Settings) value given to the builder cannot
    /// work (see [`Settings::validate`](crate::Settings::validate)).
    #[error("invalid pool configuration: {0}")]
    Settings(#[from] SettingsError),
    /// The Wasm engine could not be created, or could not prepare the
    /// compiled module for the workers.
    #[error("cannot create the Wasm engine: {}", Text(.0))]
    Engine(String),
    /// The operating system refused something the pool needs besides the
    /// engine: one of its threads (the deadline ticker, the watchdog of
    /// worker processes, the load check) or a random seed. The message
    /// says which, and why.
    #[error("{}", Text(.0))]
    System(String),
    /// A worker thread could not be started.
    #[error("cannot start worker thread {worker}: {source}")]
    Spawn {
        /// The worker's number.
        worker: usize,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Process mode: the worker executable is nowhere to be found, or was
    /// found only where it cannot be trusted.
    #[error(
        "cannot find the worker executable `{}` (looked in: {}{}). It is built with the host: run \
         `cargo build --bin wasmpool-worker` (or `cargo install wasmpool`), or point to it with \
         `ProcessConfig::executable` or the WASMPOOL_WORKER environment variable",
        file_name,
        searched.iter().map(|p| Line(&p.display().to_string()).to_string()).collect::<Vec<_>>().join(", "),
        Refused(refused)
    )]
    WorkerNotFound {
        /// The executable's file name on this platform.
        file_name: String,
        /// Every path that was tried.
        searched: Vec<PathBuf>,
        /// The files found but not taken, each with why: one that other
        /// users could have written, or put there.
        refused: Vec<(PathBuf, String)>,
    },
    /// Process mode: a worker process could not be started.
    #[error("cannot start worker process {worker}: {}", Text(reason))]
    WorkerStart {
        /// The worker's number.
        worker: usize,
        /// What went wrong.
        reason: String,
    },
    /// Cluster mode: the cluster could not start, or lost a rank.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The module has no task of that name.
    #[error("{}", no_such_task_message(task, available))]
    NoSuchTask {
        /// The name asked for.
        task: String,
        /// The names the module does have, sorted.
        available: Vec<String>,
    },
    /// The task exists but its module has no JSON entry point for it.
    #[error(
        "task `{}` has no JSON entry point: build its module with the wasmpool-guest SDK's `json` feature \
         (on by default), which adds `wasmpool_json_{}`",
        Line(task),
        Line(task)
    )]
    NoJsonEntry {
        /// The task's name.
        task: String,
    },
    /// One task call failed.
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// How many of the module's task names an unknown-task error lists.
const LISTED_TASKS: usize = 20;

/// Most close names an unknown-task error suggests.
const SUGGESTED_TASKS: usize = 3;

/// How many of the module's names are compared with an unknown name, and
/// the longest unknown name compared: the suggestions stay cheap whatever
/// the module or the caller holds.
const COMPARED_TASKS: usize = 10_000;
const COMPARED_NAME_LEN: usize = 64;

fn no_such_task_message(task: &str, available: &[String]) -> String {
    let suggested = closest_names(task, available);
    let task = Line(task);
    if available.is_empty() {
        return format!("no task `{task}`: the module defines no tasks");
    }
    let listed: Vec<String> = available.iter().take(LISTED_TASKS).map(|name| Line(name).to_string()).collect();
    let more = match available.len().saturating_sub(LISTED_TASKS) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let hint = match suggested.as_slice() {
        [] => String::new(),
        names => {
            let names: Vec<String> = names.iter().map(|name| format!("`{}`", Line(name))).collect();
            format!(" did you mean {}?", names.join(" or "))
        }
    };
    format!("no task `{task}`;{hint} the module has: {}{more}", listed.join(", "))
}

/// The names of `available` closest to `task` (a typo's likely intent),
/// nearest first: an edit distance of at most a third of its length (1 to
/// 3), or the same name in another case.
pub(crate) fn closest_names<'a>(task: &str, available: &'a [String]) -> Vec<&'a str> {
    let len = task.chars().count();
    if len == 0 || len > COMPARED_NAME_LEN {
        return Vec::new();
    }
    let most = (len / 3).clamp(1, 3);
    let mut close: Vec<(usize, &str)> = available
        .iter()
        .take(COMPARED_TASKS)
        .filter(|name| name.len().abs_diff(task.len()) <= most && name.as_str() != task)
        .filter_map(|name| {
            let distance = if name.eq_ignore_ascii_case(task) { 0 } else { strsim::damerau_levenshtein(task, name) };
            (distance <= most).then_some((distance, name.as_str()))
        })
        .collect();
    close.sort();
    close.into_iter().take(SUGGESTED_TASKS).map(|(_, name)| name).collect()
}

impl Error {
    /// The task error inside, if this is one.
    pub fn as_task_error(&self) -> Option<&TaskError> {
        match self {
            Error::Task(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a module was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// Zero bytes.
    #[error("the module is empty (0 bytes)")]
    Empty,
    /// The bytes do not start like a WebAssembly binary.
    #[error("not a WebAssembly binary (it does not start with \"\\0asm\"); is this the right file?")]
    NotWasm,
    /// Wasmtime could not validate or compile it.
    #[error("it does not compile: {}", Text(.0))]
    Compile(String),
    /// It imports something the sandbox does not provide.
    #[error(
        "it imports `{}::{}`, which wasmpool does not provide (only `wasmpool::panic`, \
         `wasmpool::task_seed`, `wasmpool::send` and `wasmpool::progress` are available, \
         and WASI preview 1's functions, `wasi_snapshot_preview1::*`)",
        Line(module),
        Line(name)
    )]
    ForbiddenImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
    },
    /// A required export is absent.
    #[error("it lacks the export `{}` ({expected}); was it built with the wasmpool guest SDK?", Line(name))]
    MissingExport {
        /// The missing export.
        name: String,
        /// What it should be.
        expected: &'static str,
    },
    /// An export exists with the wrong type.
    #[error("its export `{}` should be {expected}", Line(name))]
    WrongExportType {
        /// The export.
        name: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The task list (custom section) could not be read.
    #[error("its task list (custom section `wasmpool.tasks`) is unreadable: {}", Text(.0))]
    Manifest(String),
    /// The module implements another ABI version.
    #[error("it implements wasmpool ABI version {found}, this host implements version {expected}")]
    AbiVersion {
        /// The module's version.
        found: u32,
        /// The host's version.
        expected: u32,
    },
    /// Guest code that runs while the module is loaded (its start
    /// function, `_initialize`, `wasmpool_abi_version` or the init task)
    /// did not return within the load deadline (or the task deadline, when
    /// that is shorter), and was stopped.
    #[error(
        "its {step} did not return within {limit:?}, the time loading may take (the load deadline, \
         or the task deadline when shorter)"
    )]
    LoadTimeout {
        /// What was running.
        step: LoadStep,
        /// The time it had.
        limit: Duration,
    },
    /// It compiled but could not be instantiated.
    #[error("it cannot be instantiated: {}", Text(.0))]
    Instantiation(String),
    /// It is valid, but the rewrite that gives its NaNs the same bits on
    /// every CPU could not be made (a function at the limit of locals, say).
    #[error(
        "its NaNs cannot be given the same bits on every CPU: {}; `canonicalize_nans(false)` \
         runs it with the CPU's NaNs",
        Text(.0)
    )]
    NanRewrite(String),
    /// A task component's start argument (its custom section
    /// `wasmpool-start`, which holds the source of tasks written in
    /// Python) cannot be used.
    #[error("its start argument (custom section `wasmpool-start`) cannot be used: {}", Text(.0))]
    StartArgument(String),
    /// It runs past a sandbox limit before serving any task: too large to
    /// compile, or an initial memory, table or start function beyond the
    /// pool's limits.
    #[error("{0}")]
    Limit(LimitExceeded),
}

/// Guest code that runs while a module is loaded, before it serves tasks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum LoadStep {
    /// The module's start function, which instantiation runs.
    StartFunction,
    /// `_initialize`, the set-up a WASI reactor module exports.
    Initialize,
    /// `wasmpool_abi_version`, which reports the module's ABI version.
    AbiVersion,
    /// The pool's init task.
    InitTask(String),
    /// A task component's start (which runs the top-level code of a
    /// module of tasks written in Python) and `describe`, by which it
    /// lists its tasks.
    TaskList,
}

impl fmt::Display for LoadStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadStep::StartFunction => f.write_str("start function"),
            LoadStep::Initialize => f.write_str("export `_initialize`"),
            LoadStep::AbiVersion => write!(f, "export `{}`", wasmpool_abi::ABI_VERSION_EXPORT),
            LoadStep::InitTask(task) => write!(f, "init task `{}`", Line(task)),
            LoadStep::TaskList => {
                f.write_str("the component's start and task list (which run the module's top-level code)")
            }
        }
    }
}

/// One failed task call: which task, which input, and what happened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("task `{}` (input #{index}): {failure}", Line(task))]
pub struct TaskError {
    /// The task's name.
    pub task: String,
    /// The input's position in its map (0 for `call` and `submit`).
    pub index: usize,
    /// What happened.
    pub failure: TaskFailure,
}

/// The limit a task (or a module, at build time) ran into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// It ran longer than its deadline and was stopped.
    #[error("stopped at its deadline of {limit:?}")]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// It tried to grow its linear memory past the cap.
    #[error("tried to grow its memory to {requested} bytes, past the limit of {limit} bytes")]
    Memory {
        /// The size asked for, in bytes.
        requested: u64,
        /// The cap, in bytes.
        limit: u64,
    },
    /// It tried to grow a table past the cap.
    #[error("tried to grow a table to {requested} elements, past the limit of {limit}")]
    Table {
        /// The size asked for, in elements.
        requested: u64,
        /// The cap, in elements.
        limit: u64,
    },
    /// It used up its fuel (instruction budget).
    #[error("ran out of fuel (its budget was {limit} units)")]
    Fuel {
        /// The budget.
        limit: u64,
    },
    /// It recursed past the Wasm stack cap.
    #[error("overflowed its stack (limit {limit} bytes)")]
    Stack {
        /// The cap, in bytes.
        limit: usize,
    },
    /// It overflowed the stack it keeps in its own linear memory (Rust and
    /// C guests keep there the locals whose address is taken). Its size is
    /// fixed when the guest is linked: 1 MiB for Rust, or
    /// `-C link-arg=-zstack-size=<bytes>`.
    #[error("overflowed the stack it keeps in linear memory (its size is set when the guest is linked)")]
    LinearStack,
    /// It handed back more bytes than the output cap (`what`: a result,
    /// stdout, …); the host refused them without copying.
    #[error("its {what}{} is over the output limit of {limit} bytes", OfLength(*len))]
    Output {
        /// Which buffer.
        what: String,
        /// Its length, as the guest claimed it; `None` where the host
        /// stopped copying without learning it (a task component's reply
        /// longer than the most the host copies from one call).
        len: Option<u64>,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The module file is larger than the compile limits allow.
    #[error("the module is {len} bytes, over the limit of {limit}")]
    ModuleSize {
        /// Its size.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The module defines more functions than the compile limits allow.
    #[error("the module defines {count} functions, over the limit of {limit}")]
    Functions {
        /// How many it defines (counted up to the limit and one past).
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The module's functions declare more locals than the compile limits allow.
    #[error("the module's functions declare {count} locals in all, over the limit of {limit}")]
    Locals {
        /// How many (counted until past the limit).
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// It held more WASI handles at once (open files and folders, streams,
    /// and the like) than a task may: each open file is a descriptor of
    /// the host's process.
    #[error("held more than {limit} WASI handles (open files, streams) at once")]
    Handles {
        /// The most a task may hold.
        limit: u64,
    },
}

impl LimitExceeded {
    /// The output limit `what` (a result, a message, …) of `len` bytes ran
    /// into, if it is over `limit`.
    pub(crate) fn output_over(what: &str, len: usize, limit: usize) -> Option<LimitExceeded> {
        (len > limit).then(|| LimitExceeded::Output { what: what.into(), len: Some(len as u64), limit: limit as u64 })
    }

    /// How many bytes of text it holds (see [`TaskFailure::text_len`]).
    fn text_len(&self) -> usize {
        match self {
            LimitExceeded::Output { what, .. } => what.len(),
            _ => 0,
        }
    }
}

/// " of N bytes", or nothing for a length not known.
struct OfLength(Option<u64>);

impl fmt::Display for OfLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(len) => write!(f, " of {len} bytes"),
            None => Ok(()),
        }
    }
}

/// "; found but not taken: PATH (why), …", or nothing.
struct Refused<'a>(&'a [(PathBuf, String)]);

impl fmt::Display for Refused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, why)) in self.0.iter().enumerate() {
            let lead = if i == 0 { "; found but not taken: " } else { ", " };
            write!(f, "{lead}{} ({why})", Line(&path.display().to_string()))?;
        }
        Ok(())
    }
}

/// What went wrong in one task call.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TaskFailure {
    /// The host could not encode the arguments.
    #[error("the arguments could not be encoded: {}", Text(.0))]
    EncodeArguments(String),
    /// The argument types do not match the task's parameter types.
    #[error("argument type mismatch: {}", Text(.0))]
    ArgumentTypes(String),
    /// The guest could not decode the arguments.
    #[error("the task could not decode its arguments: {}", Text(.0))]
    BadArguments(String),
    /// The host could not decode the result into the requested type.
    #[error("the result could not be decoded as `{expected}`: {}", Text(reason))]
    DecodeResult {
        /// The Rust type the caller asked for.
        expected: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A message the task sent could not be decoded into the exchange's
    /// message type (the task still runs; this is the message's event).
    #[error("a message could not be decoded as `{expected}`: {}", Text(reason))]
    DecodeMessage {
        /// The Rust type the exchange expects.
        expected: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The task panicked.
    #[error("panicked at {}: {}", Line(location), Text(message))]
    Panic {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic.
        location: String,
    },
    /// The guest trapped (without a panic).
    #[error("trapped: {}{}", Text(kind), Backtrace(frames))]
    Trap {
        /// The kind of trap, as wasmtime describes it.
        kind: String,
        /// The Wasm call stack, innermost first, with function names.
        #[serde(deserialize_with = "nested::frames")]
        frames: Vec<String>,
    },
    /// The task returned `Err`; this is its message.
    #[error("failed: {}", Text(.0))]
    Failed(String),
    /// The guest broke the ABI (for example, a result outside its memory).
    #[error("the guest broke the wasmpool ABI: {}", Text(.0))]
    Abi(String),
    /// A fresh instance of the module could not be created for the task.
    #[error("the module could not be instantiated: {}", Text(.0))]
    Instantiate(String),
    /// The init task failed on the instance that was to run this task.
    #[error("init task `{}` failed: {failure}", Line(task))]
    Init {
        /// The init task's name.
        task: String,
        /// How it failed.
        #[serde(with = "nested")]
        failure: Box<TaskFailure>,
    },
    /// Process mode: the worker process died while running this task, on
    /// every attempt the pool's retry limit allowed.
    #[error("worker process {worker} died running it, {attempts} time(s) (last: {}; {})", Line(status), Text(cause))]
    WorkerCrashed {
        /// The worker slot whose processes died.
        worker: usize,
        /// How many times the task was tried.
        attempts: u32,
        /// How the last process ended, e.g. "signal: 9 (SIGKILL)".
        status: String,
        /// What the host saw, e.g. "the stream ended".
        cause: String,
    },
    /// The pool shut down before the task ran.
    #[error("the pool shut down before the task ran")]
    PoolClosed,
    /// The task ran into a sandbox limit and was stopped.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// The caller cancelled the task.
    #[error("cancelled")]
    Cancelled,
    /// Cluster mode: the rank holding this input was lost (silent past the
    /// rank timeout, or its messages broke the protocol) before it answered.
    /// Not the input's fault: run the job again (`wasmpool run --resume`).
    #[error("rank {rank} (host {}) was lost before it answered: {}", Line(host), Line(reason))]
    RankLost {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// What happened to it.
        reason: String,
    },
    /// A JSON input is not JSON, or not the task's arguments (the wrong
    /// number of them); found by the host before the task ran.
    #[error("invalid JSON input: {}", Text(.0))]
    InvalidJson(String),
    /// The task asked for something the pool does not grant (a clock, or
    /// to sleep), was refused, and then failed: usually Rust's `std`
    /// panicking on the refusal.
    #[error(
        "it used {} ({}), which this pool does not grant; grant it with `{}`.{}",
        capability.what(),
        capability.uses(),
        capability.grant(),
        then_sentence(failure)
    )]
    NotGranted {
        /// What the task asked for.
        capability: Capability,
        /// How the task then failed (the refusal's panic, usually).
        #[serde(with = "nested")]
        failure: Box<TaskFailure>,
    },
}

/// The failure of a task stopped at the very call a capability was refused
/// at (task components are: the host traps there), which has nothing to
/// tell after the refusal.
pub(crate) const STOPPED_AT_THE_REFUSED_CALL: &str = "stopped at the refused call";

/// What a task did after a capability was refused, as the sentence that
/// ends the refusal's message: " It then panicked at …" (a Rust task's
/// `std` on the error it was given), or nothing for a task stopped at the
/// refused call itself. For the messages of the front ends, which word
/// the refusal their own way.
pub fn then_sentence(failure: &TaskFailure) -> String {
    match failure {
        TaskFailure::Failed(text) if text == STOPPED_AT_THE_REFUSED_CALL => String::new(),
        other => format!(" It then {other}"),
    }
}

/// Most failures one [`TaskFailure`] may hold inside another, when read
/// back from bytes: a sound host nests at most two (an init task's refused
/// clock). Failures arrive from worker processes and ranks, which a guest
/// may have taken over; without a bound, a frame of nested failures a few
/// kilobytes long would overflow the reader's stack.
pub(crate) const MAX_NESTED_FAILURES: usize = 4;

/// Most frames of a trap's backtrace, as the engines keep them
/// (`runtime::engine`), and as many as are read back.
pub(crate) const MAX_FRAMES: usize = 64;

/// The wire form of a failure inside another: as itself, read back with
/// the depth bounded by [`MAX_NESTED_FAILURES`].
mod nested {
    use super::{MAX_FRAMES, MAX_NESTED_FAILURES, TaskFailure};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::cell::Cell;

    thread_local! {
        /// How many nested failures the reader on this thread is inside.
        static DEPTH: Cell<usize> = const { Cell::new(0) };
    }

    /// Puts the depth back when the nested failure is read (or not).
    struct Leave(usize);

    impl Drop for Leave {
        fn drop(&mut self) {
            DEPTH.set(self.0);
        }
    }

    pub(super) fn serialize<S: Serializer>(failure: &TaskFailure, serializer: S) -> Result<S::Ok, S::Error> {
        failure.serialize(serializer)
    }

    /// A trap's frame names, read back: at most [`MAX_FRAMES`], as many as
    /// the engine keeps. (An empty name is one byte in a frame and a
    /// `String` in memory: unbounded, a reply of 200 MiB would have become
    /// gigabytes before anything could look at it.)
    pub(super) fn frames<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        struct Frames;
        impl<'de> serde::de::Visitor<'de> for Frames {
            type Value = Vec<String>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "at most {MAX_FRAMES} frame names")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut frames = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_FRAMES));
                while let Some(frame) = seq.next_element::<String>()? {
                    if frames.len() == MAX_FRAMES {
                        return Err(A::Error::custom(format_args!("a trap of more than {MAX_FRAMES} frames")));
                    }
                    frames.push(frame);
                }
                Ok(frames)
            }
        }
        deserializer.deserialize_seq(Frames)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<TaskFailure>, D::Error> {
        let depth = DEPTH.get();
        if depth >= MAX_NESTED_FAILURES {
            return Err(D::Error::custom(format_args!("a task failure nests more than {MAX_NESTED_FAILURES} others")));
        }
        DEPTH.set(depth + 1);
        let _leave = Leave(depth);
        TaskFailure::deserialize(deserializer).map(Box::new)
    }
}

impl TaskFailure {
    /// How many bytes of text the failure holds (the failures it nests
    /// included): what a sound host keeps is bounded by the cuts of
    /// `runtime::instance`, so more marks a reply not to believe.
    pub(crate) fn text_len(&self) -> usize {
        match self {
            TaskFailure::EncodeArguments(text)
            | TaskFailure::ArgumentTypes(text)
            | TaskFailure::BadArguments(text)
            | TaskFailure::Failed(text)
            | TaskFailure::Abi(text)
            | TaskFailure::Instantiate(text)
            | TaskFailure::InvalidJson(text) => text.len(),
            TaskFailure::DecodeResult { expected, reason } | TaskFailure::DecodeMessage { expected, reason } => {
                expected.len() + reason.len()
            }
            TaskFailure::Panic { message, location } => message.len() + location.len(),
            TaskFailure::Trap { kind, frames } => kind.len() + frames.iter().map(String::len).sum::<usize>(),
            TaskFailure::Init { task, failure } => task.len() + failure.text_len(),
            TaskFailure::WorkerCrashed { status, cause, .. } => status.len() + cause.len(),
            TaskFailure::RankLost { host, reason, .. } => host.len() + reason.len(),
            TaskFailure::NotGranted { failure, .. } => failure.text_len(),
            TaskFailure::PoolClosed | TaskFailure::Cancelled => 0,
            TaskFailure::Limit(limit) => limit.text_len(),
        }
    }
}

/// A capability a task may ask for and a pool grants only on request
/// ([`WasiConfig`](crate::WasiConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Capability {
    /// The wall clock: the date and time of day.
    WallClock,
    /// The monotonic clock: measuring elapsed time.
    MonotonicClock,
    /// Sleeping (or waiting with a timeout), which needs the monotonic clock.
    Sleep,
}

impl Capability {
    /// The capability in words: "the wall clock", "the monotonic clock", "sleeping".
    pub fn what(self) -> &'static str {
        match self {
            Capability::WallClock => "the wall clock",
            Capability::MonotonicClock => "the monotonic clock",
            Capability::Sleep => "sleeping (which needs the monotonic clock)",
        }
    }

    /// What in Rust's `std` uses it.
    pub fn example(self) -> &'static str {
        match self {
            Capability::WallClock => "SystemTime::now",
            Capability::MonotonicClock => "Instant::now",
            Capability::Sleep => "thread::sleep",
        }
    }

    /// What in Python's standard library uses it (tasks written in
    /// Python), each call in backquotes. The monotonic clock names
    /// `time.sleep()` too: CPython reads that clock before it sleeps, so a
    /// sleeping task is refused the clock first.
    pub fn python_uses(self) -> &'static str {
        match self {
            Capability::WallClock => "`time.time()`",
            Capability::MonotonicClock => "`time.monotonic()`, `time.perf_counter()` or `time.sleep()`",
            Capability::Sleep => "`time.sleep()`",
        }
    }

    /// The calls that use it, in words for tasks written in either
    /// language: "`SystemTime::now` in Rust, `time.time()` in Python".
    pub fn uses(self) -> String {
        format!("`{}` in Rust, {} in Python", self.example(), self.python_uses())
    }

    /// The library call that grants it.
    pub fn grant(self) -> &'static str {
        match self {
            Capability::WallClock => "WasiConfig::wall_clock",
            Capability::MonotonicClock | Capability::Sleep => "WasiConfig::monotonic_clock",
        }
    }

    /// The `wasmpool run` option that grants it.
    pub fn flag(self) -> &'static str {
        match self {
            Capability::WallClock => "--allow-wall-clock",
            Capability::MonotonicClock | Capability::Sleep => "--allow-monotonic-clock",
        }
    }
}

impl TaskFailure {
    /// Which kind of failure this is: a stable, coarse grouping for
    /// programs that react to failures (report, retry, stop) without
    /// matching every variant, as `JoinError::is_panic` does in tokio.
    pub fn kind(&self) -> FailureKind {
        match self {
            TaskFailure::InvalidJson(_) => FailureKind::InvalidInput,
            TaskFailure::EncodeArguments(_) | TaskFailure::ArgumentTypes(_) | TaskFailure::BadArguments(_) => {
                FailureKind::BadArguments
            }
            TaskFailure::DecodeResult { .. } | TaskFailure::DecodeMessage { .. } => FailureKind::BadResult,
            TaskFailure::Panic { .. } => FailureKind::Panic,
            TaskFailure::Trap { .. } => FailureKind::Trap,
            TaskFailure::Failed(_) => FailureKind::Failed,
            TaskFailure::Limit(_) => FailureKind::Limit,
            TaskFailure::WorkerCrashed { .. } => FailureKind::WorkerCrashed,
            TaskFailure::Abi(_) | TaskFailure::Instantiate(_) | TaskFailure::Init { .. } => FailureKind::Module,
            TaskFailure::PoolClosed | TaskFailure::Cancelled => FailureKind::Cancelled,
            TaskFailure::RankLost { .. } => FailureKind::RankLost,
            TaskFailure::NotGranted { .. } => FailureKind::NotGranted,
        }
    }
}

/// The kind of a [`TaskFailure`] ([`TaskFailure::kind`]). Each has a stable
/// name ([`as_str`](Self::as_str)), which the `wasmpool` command writes in
/// its error objects. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The input is not the task's arguments: not JSON, or the wrong
    /// number of them (found by the host before the task ran).
    InvalidInput,
    /// The arguments could not be encoded, or the task's types refused them.
    BadArguments,
    /// The result, or a message, could not be decoded into the type asked for.
    BadResult,
    /// The task panicked.
    Panic,
    /// The guest trapped without a panic.
    Trap,
    /// The task returned `Err`.
    Failed,
    /// A sandbox limit stopped the task.
    Limit,
    /// Its worker process died on every attempt the retry limit allowed.
    WorkerCrashed,
    /// The module failed around the task: it broke the ABI, no instance
    /// could be made, or the init task failed.
    Module,
    /// The caller cancelled the task, or the pool closed first.
    Cancelled,
    /// Cluster mode: the rank holding the input was lost. Not the input's
    /// fault: running it again can succeed.
    RankLost,
    /// The task failed on a capability the pool does not grant (a clock).
    NotGranted,
}

impl FailureKind {
    /// The kind's stable name: `invalid_input`, `bad_arguments`,
    /// `bad_result`, `panic`, `trap`, `failed`, `limit`, `worker_crashed`,
    /// `module`, `cancelled`, `rank_lost` or `not_granted`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidInput => "invalid_input",
            FailureKind::BadArguments => "bad_arguments",
            FailureKind::BadResult => "bad_result",
            FailureKind::Panic => "panic",
            FailureKind::Trap => "trap",
            FailureKind::Failed => "failed",
            FailureKind::Limit => "limit",
            FailureKind::WorkerCrashed => "worker_crashed",
            FailureKind::Module => "module",
            FailureKind::Cancelled => "cancelled",
            FailureKind::RankLost => "rank_lost",
            FailureKind::NotGranted => "not_granted",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats trap frames as an indented list after the trap kind.
struct Backtrace<'a>(&'a [String]);

impl fmt::Display for Backtrace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "\nwasm backtrace:")?;
        for (i, frame) in self.0.iter().enumerate() {
            write!(f, "\n  {i:>3}: {}", Line(frame))?;
        }
        Ok(())
    }
}

/// What went wrong with the cluster itself (not with a task), in cluster
/// mode ([`crate::cluster`], which re-exports it). Defined here with the
/// other errors, so that this leaf names no layer above it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `Cluster::join` outside an MPI job.
    #[error(
        "not started by an MPI launcher (no OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in the \
         environment): run it with `mpirun -np N …` or `srun --mpi=pmix -n N …`"
    )]
    NotLaunched,
    /// The launcher started several processes but gave them no MPI world
    /// together (an `srun` step without `--mpi=pmix`, or an MPI world of
    /// one): each would run the whole job alone.
    #[error(
        "the launcher started {processes} processes ({variable}={processes}) but gave them no MPI world \
         together: each would run the whole job alone, so none does. Under Slurm, start the job step with \
         the PMIx plugin Open MPI needs: `srun --mpi=pmix …` (`srun --mpi=list` lists Slurm's plugins); \
         under another launcher, use the one of the MPI library wasmpool was built with. To run one \
         independent job per task on purpose, each with its own output, set WASMPOOL_CLUSTER=off"
    )]
    AloneInWorld {
        /// How many processes the launcher started.
        processes: usize,
        /// The environment variable that says so.
        variable: &'static str,
    },
    /// MPI could not be initialised, or was already.
    #[error("cannot initialise MPI: {}", Line(.0))]
    Init(String),
    /// A rank could not join: another module, engine, settings or version.
    #[error("rank {rank} (host {}) cannot join the pool: {}", Line(host), Line(reason))]
    Refused {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// Rank 0 refused this rank, or another one (the job stops).
    #[error("rank 0 stopped the job at set-up: {}", Line(.0))]
    Stopped(String),
    /// A rank sent something that is not a cluster message.
    #[error("rank {rank} (host {}) broke the cluster protocol: {}", Line(host), Line(reason))]
    Protocol {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// A rank was not heard from within the rank timeout.
    #[error("rank {rank} (host {}) went silent: nothing heard from it for {after:?}", Line(host))]
    Silent {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// How long it was silent.
        after: Duration,
    },
    /// A rank kept answering but held a job longer than its inputs'
    /// deadlines allow: every input run one after another, each to its
    /// deadline and its worker process's retries, behind every job the rank
    /// held before it, and the rank timeout on top.
    #[error(
        "rank {rank} (host {}) answers but makes no progress: it has held a job of {inputs} input(s) for \
         {held:?}, longer than their deadlines allow",
        Line(host)
    )]
    Stalled {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// The inputs of the job it held too long.
        inputs: usize,
        /// How long it had held it.
        held: Duration,
    },
    /// A rank sent a message larger than the pool's limits allow it to
    /// send; it was left unreceived (nothing was allocated for it).
    #[error(
        "rank {rank} (host {}) sent a message of {len} bytes, more than the {limit} bytes the pool's limits \
         allow for what it holds; it was not received",
        Line(host)
    )]
    Oversized {
        /// The rank.
        rank: usize,
        /// Its host name.
        host: String,
        /// The message's size.
        len: u64,
        /// The most it could have sent.
        limit: u64,
    },
    /// Rank 0's set-up (the module and what comes with it) is larger than
    /// this rank accepts: its compile limit on the module's size, and room
    /// for the rest. Nothing was received.
    #[error(
        "rank 0's module and set-up are {len} bytes, more than this rank accepts ({limit} bytes: its compile \
         limit on a module's size and room for the rest); nothing was received"
    )]
    SetupTooLarge {
        /// The set-up's size.
        len: u64,
        /// The most this rank accepts.
        limit: u64,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn task_errors_name_task_index_and_cause() {
        let e = TaskError {
            task: "divide".into(),
            index: 3,
            failure: TaskFailure::Panic { message: "cannot divide 1 by zero".into(), location: "src/x.rs:4:9".into() },
        };
        assert_eq!(e.to_string(), "task `divide` (input #3): panicked at src/x.rs:4:9: cannot divide 1 by zero");
    }

    #[test]
    fn traps_list_their_frames() {
        let f = TaskFailure::Trap { kind: "unreachable".into(), frames: vec!["a".into(), "b".into()] };
        assert_eq!(f.to_string(), "trapped: unreachable\nwasm backtrace:\n    0: a\n    1: b");
    }

    #[test]
    fn every_failure_has_a_kind_with_a_stable_name() {
        let limit = TaskFailure::Limit(LimitExceeded::Fuel { limit: 1 });
        assert_eq!(limit.kind(), FailureKind::Limit);
        assert_eq!(limit.kind().to_string(), "limit");
        assert_eq!(TaskFailure::InvalidJson("x".into()).kind().as_str(), "invalid_input");
        assert_eq!(TaskFailure::ArgumentTypes("x".into()).kind().as_str(), "bad_arguments");
        assert_eq!(TaskFailure::PoolClosed.kind(), FailureKind::Cancelled);
        let lost = TaskFailure::RankLost { rank: 1, host: "h".into(), reason: "silent".into() };
        assert_eq!(lost.kind().as_str(), "rank_lost");
    }

    #[test]
    fn unknown_tasks_list_the_known_ones() {
        let e = Error::NoSuchTask { task: "sqr".into(), available: vec!["add".into(), "sqrt".into()] };
        assert_eq!(e.to_string(), "no task `sqr`; did you mean `sqrt`? the module has: add, sqrt");
        let e = Error::NoSuchTask { task: "mul".into(), available: vec!["add".into(), "sqrt".into()] };
        assert_eq!(e.to_string(), "no task `mul`; the module has: add, sqrt");
    }

    #[test]
    fn suggestions_are_the_nearest_names_first() {
        let names: Vec<String> =
            ["mandel_row", "mandel_rows", "monte_carlo", "Sqrt", "sqrt", "square"].map(String::from).to_vec();
        assert_eq!(closest_names("sqr", &names), ["sqrt"]);
        assert_eq!(closest_names("SQRT", &names), ["Sqrt", "sqrt"]);
        assert_eq!(closest_names("mandel_rwo", &names), ["mandel_row", "mandel_rows"]);
        assert_eq!(closest_names("squares", &names), ["square"]);
        assert!(closest_names("x", &names).is_empty());
        assert!(closest_names("", &names).is_empty());
        assert!(closest_names(&"s".repeat(100_000), &names).is_empty());
    }

    /// The postcard bytes of `depth` init failures, each inside the last,
    /// around a cancellation: built by hand, as an attacker would (writing
    /// such a value out would recurse as deep).
    pub(crate) fn nested_init_failures(depth: usize) -> Vec<u8> {
        let one = postcard::to_allocvec(&TaskFailure::Init {
            task: String::new(),
            failure: Box::new(TaskFailure::Cancelled),
        })
        .unwrap();
        let (init, leaf) = one.split_at(one.len() - 1);
        let mut bytes = init.repeat(depth);
        bytes.extend_from_slice(leaf);
        bytes
    }

    #[test]
    fn a_refusal_says_what_followed_only_if_something_did() {
        let stopped = TaskFailure::NotGranted {
            capability: Capability::MonotonicClock,
            failure: Box::new(TaskFailure::Failed(STOPPED_AT_THE_REFUSED_CALL.into())),
        };
        let text = stopped.to_string();
        assert!(text.ends_with("grant it with `WasiConfig::monotonic_clock`."), "{text}");
        assert!(text.contains("`time.sleep()` in Python"), "{text}");
        let panicked = TaskFailure::NotGranted {
            capability: Capability::WallClock,
            failure: Box::new(TaskFailure::Failed("no clock".into())),
        };
        assert!(panicked.to_string().ends_with(". It then failed: no clock"), "{panicked}");
    }

    #[test]
    fn failures_nested_past_the_limit_are_refused_not_followed() {
        let sound = TaskFailure::Init {
            task: "setup".into(),
            failure: Box::new(TaskFailure::NotGranted {
                capability: Capability::WallClock,
                failure: Box::new(TaskFailure::Failed("no clock".into())),
            }),
        };
        let bytes = postcard::to_allocvec(&sound).unwrap();
        assert_eq!(postcard::from_bytes::<TaskFailure>(&bytes).unwrap(), sound);
        assert!(postcard::from_bytes::<TaskFailure>(&nested_init_failures(MAX_NESTED_FAILURES)).is_ok());
        for depth in [MAX_NESTED_FAILURES + 1, 100_000] {
            let error = postcard::from_bytes::<TaskFailure>(&nested_init_failures(depth)).unwrap_err();
            assert!(matches!(error, postcard::Error::SerdeDeCustom), "{depth}: {error}");
        }
        // The depth is the reader's, not the thread's: a refused read leaves
        // the next one its whole depth.
        assert_eq!(postcard::from_bytes::<TaskFailure>(&bytes).unwrap(), sound);
    }

    #[test]
    fn a_trap_of_more_frames_than_the_engine_keeps_is_refused() {
        let trap = |n: usize| TaskFailure::Trap { kind: "unreachable".into(), frames: vec![String::new(); n] };
        let bytes = postcard::to_allocvec(&trap(MAX_FRAMES)).unwrap();
        assert_eq!(postcard::from_bytes::<TaskFailure>(&bytes).unwrap(), trap(MAX_FRAMES));
        // A million empty names: a megabyte on the wire, 24 MB read whole.
        let bytes = postcard::to_allocvec(&trap(1_000_000)).unwrap();
        assert!(postcard::from_bytes::<TaskFailure>(&bytes).is_err());
    }

    #[test]
    fn text_len_counts_every_text_nested_or_not() {
        let failure = TaskFailure::Init {
            task: "ab".into(),
            failure: Box::new(TaskFailure::Trap { kind: "cde".into(), frames: vec!["f".into(), "gh".into()] }),
        };
        assert_eq!(failure.text_len(), 8);
    }
}
