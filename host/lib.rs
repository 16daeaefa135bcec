//! # wasmpool
//!
//! A worker pool whose tasks are WebAssembly functions.
//!
//! All task functions live in one Wasm module, written in plain Rust with
//! the `wasmpool-guest` SDK's `#[task]` attribute. Every worker loads that
//! same module, so every task exists in every worker, whatever the platform
//! and wherever in the module it is defined. The host copies arguments in
//! and results out as postcard buffers: nothing is shared, nothing pickled.
//!
//! ```no_run
//! use wasmpool::Pool;
//!
//! fn main() -> wasmpool::Result<()> {
//!     let pool = Pool::builder().module_file("guest_tasks.wasm").build()?;
//!     // for x in 0..100 { roots.push(x.sqrt()) }, in parallel:
//!     let roots: Vec<f64> = pool.map("sqrt", (0..100).map(f64::from))?;
//!     let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..600u32).map(|y| (y, 800u32, 600u32, 256u32)))?;
//!     # let _ = (roots, rows);
//!     Ok(())
//! }
//! ```
//!
//! Where things live:
//! - [`pool`]: the [`Pool`], its builder and the calls (`call`, `map`,
//!   `map_each`, `imap`, `imap_unordered`, `submit`, `broadcast`);
//! - [`scheduler`]: chunking and the backpressured streams behind the maps;
//! - `worker`: the worker threads; `executor`: running a task in the
//!   instance its [`InstanceMode`] calls for;
//! - [`process`]: worker processes (`wasmpool-worker`), their supervision
//!   and the `transport` (frames over pipes) they speak;
//! - [`sandbox`]: the limits every task runs under (deadline, memory,
//!   fuel, stack, output, compile limits) and the opt-in WASI capabilities;
//! - `cache`: the cache of precompiled modules;
//! - `guest_call`: the host half of the ABI (`docs/abi.md`);
//! - `module`: loading and checking a module, and its [`TaskInfo`]s;
//! - [`channel`]: messages and progress from running tasks, and the
//!   [`Exchange`] that waits on many tasks at once;
//! - [`cluster`]: one pool over the ranks of an MPI job (feature `mpi`);
//! - [`seed`]: how each task's seed is derived from the pool's;
//! - [`stats`]: what each worker has done (tasks, busy time, retries);
//! - [`json`]: calling tasks with JSON arguments and results, through the
//!   JSON entry point the guest SDK gives every task;
//! - [`error`]: [`Error`], [`TaskError`] and [`TaskFailure`];
//! - [`text`]: guest text escaped for a terminal, as every error's
//!   `Display` writes it.
#![deny(missing_docs)]

mod cache;
#[doc(hidden)]
pub mod canonical_nans;
pub mod channel;
pub mod cluster;
mod decode;
mod engine;
pub mod error;
mod executor;
#[doc(hidden)]
pub mod fresh_state;
mod guest_call;
mod handle;
pub mod json;
mod module;
pub mod pool;
mod probe;
pub mod process;
#[cfg(test)]
mod readme_api;
pub mod sandbox;
pub mod scheduler;
pub mod seed;
pub mod stats;
mod sync;
pub mod text;
pub mod transport;
mod typecheck;
mod worker;

pub use channel::exchange::{Event, Exchange};
pub use engine::{Allocator, AllocatorKind};
pub use error::{Error, FailureKind, LoadStep, ModuleError, Result, TaskError, TaskFailure};
pub use executor::InstanceMode;
pub use handle::{Captured, TaskHandle};
pub use json::JsonTask;
pub use module::{ParamInfo, TaskInfo};
pub use pool::{Pool, PoolBuilder, TaskRef, WorkerKind};
pub use sandbox::{CompileLimits, LimitExceeded, TaskOutput, WasiConfig};
pub use scheduler::chunking::ChunkSize;
pub use scheduler::stream::{Imap, ImapUnordered};
pub use stats::{PoolStats, WorkerStats};

/// The examples of `docs/semantics.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/semantics.md")]
pub struct SemanticsExamples;
