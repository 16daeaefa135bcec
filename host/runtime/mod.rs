//! The runtime: everything between a module's bytes and one call into one
//! instance. The layer below the workers; it knows nothing of pools,
//! queues or processes.
//!
//! - `code`: compiled code of either kind (a core module or a task
//!   component), copied between engines and to worker processes;
//! - `component`: task components (the `wasmpool:task` WIT world);
//! - `component_start`: a component's start argument (the source of tasks
//!   written in Python), carried in a custom section;
//! - `cuts`: how much of the text a guest hands back is kept;
//! - `engine`: wasmtime engines and their instance allocators;
//! - [`module`]: loading and checking a module, its task records;
//! - `typecheck`: a call's argument types against a task's parameters;
//! - `cache`: precompiled modules on disk, a trust boundary;
//! - `incremental`: compiled functions on disk, so that a changed module
//!   compiles only what changed (components);
//! - [`canonical_nans`] and [`fresh_state`]: the load-time rewrites (NaN
//!   bits fixed where observable; writes that mark their pages);
//! - `init`: the init task's call, run on every new instance;
//! - `instance`: an instance and the host half of the ABI (arguments in,
//!   results out, the host functions a task may call);
//! - `outbox`: where a running task's messages and progress go;
//! - `store_core`: what every store holds and does, for both code kinds
//!   (limiter, deadline watch, fuel, outbox; arming, delivering, the
//!   sandbox's part of classifying a failure).

pub(crate) mod cache;
#[doc(hidden)]
pub(crate) mod canonical_nans;
pub(crate) mod code;
pub(crate) mod component;
pub(crate) mod component_start;
pub(crate) mod cuts;
pub(crate) mod engine;
#[doc(hidden)]
pub(crate) mod fresh_state;
pub(crate) mod incremental;
pub(crate) mod init;
pub(crate) mod instance;
pub(crate) mod module;
pub(crate) mod outbox;
pub(crate) mod store_core;
#[cfg(all(test, target_os = "linux"))]
pub(crate) mod swap_for_tests;
pub(crate) mod typecheck;
