//! The init task: a task of the module run on every new instance before
//! it serves inputs, whose state the inputs start from.

use serde::{Deserialize, Serialize};

/// A task run on every new instance before it serves real tasks: its
/// name, the export it is called through (the task's postcard export, or
/// its JSON entry point: a component's tasks are always called with JSON)
/// and its arguments in that export's encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitCall {
    pub task: String,
    pub export: String,
    pub args: Vec<u8>,
    /// The init task's seed: index 0 of the pool's seed.
    pub seed: u64,
}
