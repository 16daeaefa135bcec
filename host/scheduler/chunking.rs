//! How many inputs go into one job.

use std::num::NonZeroUsize;

/// How a map groups its inputs into jobs.
///
/// Each job is one message to a worker and one message back, so grouping
/// fine-grained inputs saves scheduling overhead; small groups balance load
/// better. Every input still runs in its own fresh instance (unless the pool
/// keeps one instance per worker), so chunking never changes results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkSize {
    /// Inputs of known count `n` are split into about four chunks per
    /// worker (at most [`MAX_AUTO_CHUNK`] inputs each); inputs of unknown
    /// count go one per job, as in Python's `imap`.
    #[default]
    Auto,
    /// Exactly this many inputs per job (the last one may have fewer).
    Fixed(NonZeroUsize),
}

/// Upper bound of an automatic chunk, in inputs.
pub const MAX_AUTO_CHUNK: usize = 1024;

/// A chunk is closed early once its encoded arguments reach this many bytes,
/// so large inputs do not pile up in one job.
pub(crate) const CHUNK_BYTE_BUDGET: usize = 256 * 1024;

impl From<usize> for ChunkSize {
    /// `0` means [`ChunkSize::Auto`].
    fn from(n: usize) -> Self {
        NonZeroUsize::new(n).map_or(ChunkSize::Auto, ChunkSize::Fixed)
    }
}

impl ChunkSize {
    /// Inputs per job for a map over `size_hint`-many inputs (an
    /// iterator's `size_hint()`) on `workers` workers.
    pub fn resolve(self, size_hint: (usize, Option<usize>), workers: usize) -> usize {
        match self {
            ChunkSize::Fixed(n) => n.get(),
            ChunkSize::Auto => match size_hint {
                (low, Some(high)) if low == high => low.div_ceil(workers.max(1) * 4).clamp(1, MAX_AUTO_CHUNK),
                _ => 1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_gives_four_chunks_per_worker_when_the_count_is_known() {
        assert_eq!(ChunkSize::Auto.resolve((100, Some(100)), 2), 13);
        assert_eq!(ChunkSize::Auto.resolve((3, Some(3)), 8), 1);
        assert_eq!(ChunkSize::Auto.resolve((0, Some(0)), 2), 1);
        assert_eq!(ChunkSize::Auto.resolve((10_000_000, Some(10_000_000)), 2), MAX_AUTO_CHUNK);
    }

    #[test]
    fn auto_is_one_for_unknown_counts_and_fixed_is_fixed() {
        assert_eq!(ChunkSize::Auto.resolve((0, None), 4), 1);
        assert_eq!(ChunkSize::from(7).resolve((0, None), 4), 7);
        assert_eq!(ChunkSize::from(0), ChunkSize::Auto);
    }
}
