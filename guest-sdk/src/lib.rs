//! Guest SDK for wasmpool: write task functions as plain Rust.
//!
//! ```ignore
//! use wasmpool_guest::task;
//!
//! /// Square root of `x`.
//! #[task]
//! fn sqrt(x: f64) -> f64 {
//!     x.sqrt()
//! }
//! ```
//!
//! Compile the crate as a `cdylib` for `wasm32-unknown-unknown` and every
//! `#[task]` becomes an export the wasmpool host can call by name, with its
//! arguments and result crossing as postcard buffers. On other targets the
//! attribute leaves the function alone, so tasks can be unit-tested natively.
//!
//! What a task may take and return:
//! - any number of arguments (up to 16) whose types implement
//!   `serde::Deserialize` (borrowed `&str` and `&[u8]` included);
//! - any result implementing `serde::Serialize`; a return type named
//!   `Result<T, E>` with `E: Display` reports `Err(e)` to the host as a task
//!   failure carrying `e.to_string()`;
//! - a panic reaches the host as an error with its message and location.
//!
//! Messages while running: a task taking a [`Sender<T>`] argument sends
//! typed values to the host as it goes, and [`progress`] reports how far it
//! is (see [`channel`]).
//!
//! Random numbers: [`rng`] gives a task a generator seeded from the task's
//! own seed (see [`random`]), so results repeat exactly with the same pool
//! seed, whatever the number of workers or the order they ran in.
//!
//! System randomness: crates that ask the operating system for random
//! bytes through `getrandom` (`rand::rng()`, uuid's v4, `HashMap` keys) get
//! the task's seeded stream too, on `wasm32-wasip1` through WASI and on
//! `wasm32-unknown-unknown` through the custom sources the SDK defines
//! (feature `getrandom`, on by default; see `docs/guide-for-students.md`).
//!
//! JSON: with the `json` feature (on by default) every task also gets a
//! JSON entry point, decoding its arguments and encoding its result with
//! the task's own serde types, so JSON callers such as the `wasmpool`
//! command need no glue per task.
//!
//! The contract with the host is described in `docs/abi.md`.
//!
//! On `wasm32` the SDK installs a global allocator (feature `allocator`, on
//! by default): dlmalloc serving its first megabyte from an arena in the
//! module's initial memory, so that tasks allocating less never grow their
//! memory, which makes the fresh instance the host gives the next task
//! cheaper. A crate with its own `#[global_allocator]` depends on the SDK
//! with `default-features = false`.
#![deny(missing_docs)]

#[cfg(all(target_arch = "wasm32", feature = "allocator"))]
mod allocator;
pub mod channel;
mod codec;
#[cfg(feature = "json")]
#[doc(hidden)]
pub mod json;
mod panic_hook;
pub mod random;
mod runtime;
mod system_random;

pub use channel::{NobodyListens, Sender, progress};
#[cfg(not(target_arch = "wasm32"))]
pub use random::with_seed;
pub use random::{TaskRng, rng, seed};
pub use wasmpool_guest_macros::task;

/// Support code for the `#[task]` expansion. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{Outcome, bad_arguments, decode_args, failed, ok};
    #[cfg(feature = "json")]
    pub use crate::json;
    pub use crate::runtime::run_task;
}

/// Expands to its input when the SDK's `json` feature is on, else to
/// nothing: how `#[task]` adds JSON entry points only on request.
#[cfg(feature = "json")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_json {
    ($($item:tt)*) => { $($item)* };
}

/// Expands to its input when the SDK's `json` feature is on, else to
/// nothing: how `#[task]` adds JSON entry points only on request.
#[cfg(not(feature = "json"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_json {
    ($($item:tt)*) => {};
}
