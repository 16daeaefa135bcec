//! The sandbox's limits and the error naming the one a task ran into.

use crate::error::SettingsError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default cap on one instance's linear memory: 256 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
/// Default cap on one instance's table, in elements.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 100_000;
/// Default cap on the Wasm stack: 512 KiB, wasmtime's own default.
pub const DEFAULT_MAX_STACK: usize = 512 << 10;
/// Default cap on a result (or any buffer a guest hands back): 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;
/// Default cap on one message a running task sends, in bytes: 1 MiB (see
/// [`PoolBuilder::max_message`](crate::PoolBuilder::max_message)).
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// Bounds on what the host agrees to compile: a module past them is
/// refused before compilation starts, so a "compile-time bomb" (a small
/// file that takes minutes to compile) cannot stall `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileLimits {
    /// Largest module file, in bytes (default 64 MiB).
    pub max_module_bytes: usize,
    /// Most functions the module may define (default 100,000).
    pub max_functions: u64,
    /// Most local variables over all its functions (default 1,000,000).
    pub max_locals: u64,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits { max_module_bytes: 64 << 20, max_functions: 100_000, max_locals: 1_000_000 }
    }
}

/// Everything the sandbox bounds, as a pool was configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Limits {
    /// Wall time per task, if bounded.
    pub deadline: Option<Duration>,
    /// Wasm instructions (fuel units) per task, if metered.
    pub fuel: Option<u64>,
    pub max_memory: usize,
    pub max_table_elements: usize,
    pub max_stack: usize,
    pub max_output: usize,
    /// Largest message a task may send while running.
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: None,
            fuel: None,
            max_memory: DEFAULT_MAX_MEMORY,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_stack: DEFAULT_MAX_STACK,
            max_output: DEFAULT_MAX_OUTPUT,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

impl Limits {
    /// Checks the settings make sense together.
    pub(crate) fn validate(&self) -> Result<(), SettingsError> {
        if self.max_memory < 64 * 1024 {
            let why = format!("{} bytes is below one Wasm page (65536 bytes)", self.max_memory);
            return Err(SettingsError::new("max_memory", why));
        }
        if self.max_stack < 16 * 1024 || self.max_stack > 1 << 30 {
            let why = format!("{} bytes is outside 16 KiB ..= 1 GiB", self.max_stack);
            return Err(SettingsError::new("max_stack", why));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(SettingsError::new("deadline", "a deadline of zero would stop every task before it starts"));
        }
        if self.fuel == Some(0) {
            return Err(SettingsError::new("fuel", "a fuel budget of zero would stop every task before it starts"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LimitExceeded;

    #[test]
    fn nonsense_settings_are_refused() {
        assert!(Limits::default().validate().is_ok());
        assert!(Limits { max_memory: 1000, ..Limits::default() }.validate().is_err());
        assert!(Limits { max_stack: 10, ..Limits::default() }.validate().is_err());
        assert!(Limits { deadline: Some(Duration::ZERO), ..Limits::default() }.validate().is_err());
        assert!(Limits { fuel: Some(0), ..Limits::default() }.validate().is_err());
    }

    #[test]
    fn limit_errors_name_the_limit() {
        let e = LimitExceeded::Memory { requested: 1 << 30, limit: 1 << 20 };
        assert_eq!(e.to_string(), "tried to grow its memory to 1073741824 bytes, past the limit of 1048576 bytes");
        let e = LimitExceeded::Deadline { limit: Duration::from_millis(250) };
        assert_eq!(e.to_string(), "stopped at its deadline of 250ms");
    }
}
