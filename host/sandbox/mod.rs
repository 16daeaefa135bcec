//! The sandbox around every task: what a guest may use (memory, tables,
//! stack, instructions, wall time, output, imports) and how each limit is
//! enforced. `docs/sandbox.md` describes each limit, its default and its
//! cost.
//!
//! - [`limits`]: the limits themselves (the error naming the one a task ran
//!   into is [`LimitExceeded`](crate::LimitExceeded));
//! - `compile_limits`: refusing modules that would take too long to compile;
//! - `limiter`: memory and table growth, refused with a typed error;
//! - `interrupt`: stopping a running task at its deadline or on
//!   cancellation (epoch checks in thread workers);
//! - [`wasi`]: the WASI capabilities and captured output;
//! - `component_wasi`: the WASI interfaces a task component may import, and
//!   waits that end at the deadline;
//! - [`output`]: where captured output goes when the caller does not take it.

pub(crate) mod compile_limits;
pub(crate) mod component_wasi;
pub(crate) mod interrupt;
pub(crate) mod limiter;
pub(crate) mod limits;
pub(crate) mod output;
pub(crate) mod wasi;

pub use limits::CompileLimits;
pub use output::{OutputFn, OutputSink};
pub use wasi::{TaskOutput, WasiConfig};
