//! Memory and table growth: refused past the caps, and remembered, so that
//! the trap a guest raises after a refused allocation is reported as the
//! limit it ran into rather than as a bare `unreachable`.

use crate::error::LimitExceeded;
use wasmtime::ResourceLimiter;

/// Core instances, memories and tables one component instance may have.
pub(crate) const COMPONENT_PARTS: usize = 32;

/// The resource limiter of one store.
pub(crate) struct GuestLimiter {
    max_memory: usize,
    max_table_elements: usize,
    /// Core instances a store may have: 1 for a module, more for a
    /// component (each of its core modules is one).
    instances: usize,
    /// Memories a store may have.
    memories: usize,
    /// Tables a store may have.
    tables: usize,
    /// The last growth refused since [`take_refusal`](Self::take_refusal).
    refused: Option<LimitExceeded>,
}

impl GuestLimiter {
    /// Caps each memory at `max_memory` bytes and each table at
    /// `max_table_elements`; an instance may have `memories` memories (the
    /// module's one, and the host's mark map if it has one).
    pub(crate) fn new(max_memory: usize, max_table_elements: usize, memories: usize) -> Self {
        GuestLimiter { max_memory, max_table_elements, instances: 1, memories, tables: 1, refused: None }
    }

    /// Caps as [`new`](Self::new) for a store holding one component
    /// instance: up to [`COMPONENT_PARTS`] core instances, memories and
    /// tables (componentize-py's components have 14 core instances, one
    /// memory and two tables), each memory and table capped alike.
    pub(crate) fn for_component(max_memory: usize, max_table_elements: usize) -> Self {
        let n = COMPONENT_PARTS;
        GuestLimiter { max_memory, max_table_elements, instances: n, memories: n, tables: n, refused: None }
    }

    /// The growth refused since the last call, if any.
    pub(crate) fn take_refusal(&mut self) -> Option<LimitExceeded> {
        self.refused.take()
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.refused = Some(LimitExceeded::Memory { requested: desired as u64, limit: self.max_memory as u64 });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.refused =
                Some(LimitExceeded::Table { requested: desired as u64, limit: self.max_table_elements as u64 });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_cap_is_refused_and_remembered() {
        let mut limiter = GuestLimiter::new(1 << 20, 10, 1);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert_eq!(limiter.take_refusal(), None);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert_eq!(limiter.take_refusal(), Some(LimitExceeded::Memory { requested: 2 << 20, limit: 1 << 20 }));
        assert_eq!(limiter.take_refusal(), None);
        assert!(!limiter.table_growing(0, 11, None).unwrap());
        assert_eq!(limiter.take_refusal(), Some(LimitExceeded::Table { requested: 11, limit: 10 }));
    }
}
