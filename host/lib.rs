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
//! The API is what this root makes public: the items re-exported here and
//! two namespaces, [`cluster`] (one pool over the ranks of an MPI job,
//! feature `mpi`) and [`text`] (guest text escaped for a terminal). The
//! modules behind it are private; they are the library's layers, each
//! calling only those below it (the diagram is in `docs/architecture.md`;
//! `cargo run -p wasmpool-layers` checks it):
//! - `pool`: the [`Pool`], its builder and the calls (`call`, `map`,
//!   `map_each`, `imap`, `imap_unordered`, `submit`, `broadcast`), the
//!   [`Exchange`], [`JsonTask`]; `cluster`: the pool over MPI ranks;
//! - `scheduler`: chunking ([`ChunkSize`]) and the backpressured streams
//!   behind the maps ([`Imap`], [`ImapUnordered`]);
//! - `worker`: the worker threads, running a task in the instance its
//!   [`InstanceMode`] calls for, and what each worker has done
//!   ([`PoolStats`]); `process` and `transport`: worker processes
//!   ([`ProcessConfig`], [`worker_main`]) and the frames they speak over
//!   pipes;
//! - `runtime`: engines ([`Allocator`]), modules ([`TaskInfo`]), the
//!   compiled-module cache, an instance and the host half of the ABI
//!   (`docs/abi.md`), the load-time rewrites;
//! - `sandbox`: the limits every task runs under ([`CompileLimits`] and
//!   the `DEFAULT_*` constants) and the opt-in WASI capabilities
//!   ([`WasiConfig`]);
//! - leaves: `error` ([`Error`], [`TaskError`], [`TaskFailure`]), `text`,
//!   `seed` ([`task_seed`]: each task's seed from the pool's).
// Every public item is documented and reachable by the path the API gives
// it: a `pub` in a private module that is not re-exported is `pub(crate)`.
#![deny(missing_docs, unreachable_pub, unnameable_types)]

pub mod cluster;
mod decode;
mod error;
mod pool;
mod process;
#[cfg(test)]
mod readme_api;
mod runtime;
mod sandbox;
mod scheduler;
mod seed;
mod spin;
mod sync;
pub mod text;
mod transport;
mod trust;
mod worker;

pub use error::{
    Capability, Error, FailureKind, LimitExceeded, LoadStep, ModuleError, Result, SettingsError, TaskError,
    TaskFailure, then_sentence,
};
pub use pool::exchange::{DEFAULT_EXCHANGE_CAPACITY, Event, Exchange};
pub use pool::handle::{Captured, TaskHandle};
pub use pool::json::{IndexedJsonInputs, JsonEvent, JsonEvents, JsonInputs, JsonTask};
pub use pool::{
    DEFAULT_IDLE_SPIN, DEFAULT_LOAD_DEADLINE, DirGrant, Pool, PoolBuilder, SETTING_NAMES, Settings, TaskRef, WorkerKind,
};
pub use process::config::{DEFAULT_MAX_RETRIES, ProcessConfig};
pub use process::worker_main;
pub use runtime::cache::{
    CacheEntry, CacheEntryKind, DEFAULT_CACHE_LIMIT, cache_entries, clear_cache, default_cache_dir,
};
pub use runtime::engine::{Allocator, AllocatorKind};
pub use runtime::module::{Arity, ParamInfo, TaskInfo};
pub use sandbox::limits::{
    DEFAULT_MAX_MEMORY, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_STACK, DEFAULT_MAX_TABLE_ELEMENTS,
};
pub use sandbox::{CompileLimits, OutputFn, OutputSink, TaskOutput, WasiConfig};
pub use scheduler::chunking::{ChunkSize, MAX_AUTO_CHUNK};
pub use scheduler::stream::{Imap, ImapUnordered};
pub use seed::task_seed;
pub use worker::executor::InstanceMode;
pub use worker::stats::{PoolStats, WorkerStats};

/// For wasmpool's fuzz targets (`fuzz/`) and the spec-suite test
/// (`tests/spec_suite.rs`: the load-time rewrites as a pool applies them,
/// and an engine configured as a pool's) only: not part of the API, and
/// may change in any release.
#[doc(hidden)]
pub mod __internal {
    pub use crate::cluster::wire::decode_messages_for_fuzzing;
    pub use crate::pool::{PoolCode, pool_code, pool_engine};
    pub use crate::runtime::canonical_nans::rewrite_for_fuzzing;
    pub use crate::runtime::fresh_state::prepare_for_fuzzing;
    pub use crate::sandbox::wasi::decode_subscriptions_for_fuzzing;
    pub use crate::transport::decode_frames_for_fuzzing;
}

/// The examples of `docs/semantics.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/semantics.md")]
pub struct SemanticsExamples;
