//! Worker processes: the same module and the same results as thread
//! workers, with each worker in a process of its own.
//!
//! The host starts each worker with `std::process::Command` (never `fork`),
//! so behaviour is the same on Linux, macOS and Windows, and a user's program
//! needs no guard or special call in `main`. The worker executable,
//! `wasmpool-worker`, is found by [`find_worker_executable`](locate::find_worker_executable).
//! The host compiles the module once; workers load the precompiled machine
//! code from the module cache (`cache.rs`), checking its checksum. Requests
//! and replies are frames over the child's stdin and stdout (`transport/`).
//!
//! A worker that dies (crash, `kill -9`, out of memory) is noticed at once
//! (its stdout ends), replaced, and the task it held is run again on the new
//! process, up to the pool's retry limit; past it the task fails with
//! [`TaskFailure::WorkerCrashed`](crate::TaskFailure::WorkerCrashed) and the
//! other tasks go on. A worker process exits as soon as its stdin closes, so
//! none outlives its host, even if the host is killed.
//!
//! A task past its deadline, or cancelled, has its process killed by the
//! pool's watchdog (`watchdog.rs`) and replaced; it is not retried. Each new process
//! probes the module (instantiation, ABI version, init task) before it
//! reports ready, so a start function that never ends is caught there.

mod child;
pub(crate) mod config;
pub(crate) mod locate;
pub(crate) mod supervisor;
pub(crate) mod watchdog;

pub use child::worker_main;
