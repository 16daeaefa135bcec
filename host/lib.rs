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
//! The API is what this root re-exports; the modules behind it are the
//! library's layers, each calling only those below it (the diagram is in
//! `docs/architecture.md`; `python3 .ci/layers` checks it):
//! - [`pool`]: the [`Pool`], its builder and the calls (`call`, `map`,
//!   `map_each`, `imap`, `imap_unordered`, `submit`, `broadcast`), the
//!   [`Exchange`], [`JsonTask`]; [`cluster`]: one pool over the ranks of an
//!   MPI job (feature `mpi`);
//! - [`scheduler`]: chunking and the backpressured streams behind the maps;
//! - `worker`: the worker threads, running a task in the instance its
//!   [`InstanceMode`] calls for, and what each worker has done
//!   ([`PoolStats`]); [`process`] and [`transport`]: worker processes
//!   (`wasmpool-worker`) and the frames they speak over pipes;
//! - [`runtime`]: engines, modules ([`TaskInfo`]), the compiled-module
//!   cache, an instance and the host half of the ABI (`docs/abi.md`), the
//!   load-time rewrites;
//! - [`sandbox`]: the limits every task runs under and the opt-in WASI
//!   capabilities;
//! - leaves: [`error`] ([`Error`], [`TaskError`], [`TaskFailure`]),
//!   [`text`] (guest text escaped for a terminal), [`seed`] (each task's
//!   seed from the pool's).
#![deny(missing_docs)]

pub mod cluster;
mod decode;
pub mod error;
pub mod pool;
pub mod process;
#[cfg(test)]
mod readme_api;
pub mod runtime;
pub mod sandbox;
pub mod scheduler;
pub mod seed;
mod spin;
mod sync;
pub mod text;
pub mod transport;
mod worker;

pub use error::{Error, FailureKind, LimitExceeded, LoadStep, ModuleError, Result, TaskError, TaskFailure};
pub use pool::exchange::{Event, Exchange};
pub use pool::handle::{Captured, TaskHandle};
pub use pool::json::JsonTask;
pub use pool::{Pool, PoolBuilder, TaskRef, WorkerKind};
pub use runtime::engine::{Allocator, AllocatorKind};
pub use runtime::module::{ParamInfo, TaskInfo};
pub use sandbox::{CompileLimits, TaskOutput, WasiConfig};
pub use scheduler::chunking::ChunkSize;
pub use scheduler::stream::{Imap, ImapUnordered};
pub use worker::executor::InstanceMode;
pub use worker::stats::{PoolStats, WorkerStats};

/// The examples of `docs/semantics.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/semantics.md")]
pub struct SemanticsExamples;
