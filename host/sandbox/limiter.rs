//! Memory and table growth: refused past the caps, and remembered, so that
//! the trap a guest raises after a refused allocation is reported as the
//! limit it ran into rather than as a bare `unreachable`.

use crate::error::LimitExceeded;
use wasmtime::ResourceLimiter;

/// Core instances, memories and tables one component instance may have.
pub(crate) const COMPONENT_PARTS: usize = 32;

/// The resource limiter of one store.
pub(crate) struct GuestLimiter {
    /// The cap on all of the guest's linear memory together, in bytes.
    max_memory: usize,
    max_table_elements: usize,
    /// Core instances a store may have: 1 for a module, more for a
    /// component (each of its core modules is one).
    instances: usize,
    /// Memories a store may have.
    memories: usize,
    /// Tables a store may have.
    tables: usize,
    /// Bytes of all the guest's memories so far (the host's mark map not
    /// counted).
    memory_in_use: usize,
    /// The size of the host's mark map, until its one allocation is seen.
    map: Option<usize>,
    /// The last growth refused since [`take_refusal`](Self::take_refusal).
    refused: Option<LimitExceeded>,
}

impl GuestLimiter {
    /// Caps the module's memory at `max_memory` bytes and each table at
    /// `max_table_elements`. `map`: the size of the memory the host adds
    /// for write marks (`runtime::fresh_state`), if the instance has one; it
    /// is the host's and does not count (any memory of that size, allocated
    /// whole: the guest's own memory of the same size then counts in its
    /// place, which comes to the same total).
    pub(crate) fn new(max_memory: usize, max_table_elements: usize, map: Option<usize>) -> Self {
        let memories = 1 + usize::from(map.is_some());
        GuestLimiter::with_parts(max_memory, max_table_elements, 1, memories, 1, map)
    }

    /// Caps for a store holding one component instance: up to
    /// [`COMPONENT_PARTS`] core instances, memories and tables
    /// (componentize-py's components have 14 core instances, one memory and
    /// two tables), all the memories together within `max_memory` bytes,
    /// each table within `max_table_elements`.
    pub(crate) fn for_component(max_memory: usize, max_table_elements: usize) -> Self {
        let n = COMPONENT_PARTS;
        GuestLimiter::with_parts(max_memory, max_table_elements, n, n, n, None)
    }

    fn with_parts(
        max_memory: usize,
        max_table_elements: usize,
        instances: usize,
        memories: usize,
        tables: usize,
        map: Option<usize>,
    ) -> Self {
        GuestLimiter {
            max_memory,
            max_table_elements,
            instances,
            memories,
            tables,
            memory_in_use: 0,
            map,
            refused: None,
        }
    }

    /// The growth refused since the last call, if any.
    pub(crate) fn take_refusal(&mut self) -> Option<LimitExceeded> {
        self.refused.take()
    }
}

impl ResourceLimiter for GuestLimiter {
    /// Called for every memory of the instance as it is created (`current`
    /// 0) and as it grows: the total of all of them is what is capped.
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if current == 0 && self.map == Some(desired) {
            self.map = None;
            return Ok(true);
        }
        // Past the memory's own maximum wasmtime refuses the growth anyway
        // (`memory.grow` gives -1): not the sandbox's refusal, and nothing
        // to count (a count that rose on every such attempt would refuse a
        // kept or reset instance memory a new one gets).
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        let total = self.memory_in_use.saturating_add(growth);
        if total > self.max_memory {
            self.refused = Some(LimitExceeded::Memory { requested: total as u64, limit: self.max_memory as u64 });
            return Ok(false);
        }
        // Kept even should wasmtime then fail to make it: the count may be
        // high, never low.
        self.memory_in_use = total;
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
        let mut limiter = GuestLimiter::new(1 << 20, 10, None);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert_eq!(limiter.take_refusal(), None);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert_eq!(limiter.take_refusal(), Some(LimitExceeded::Memory { requested: 2 << 20, limit: 1 << 20 }));
        assert_eq!(limiter.take_refusal(), None);
        assert!(!limiter.table_growing(0, 11, None).unwrap());
        assert_eq!(limiter.take_refusal(), Some(LimitExceeded::Table { requested: 11, limit: 10 }));
    }

    #[test]
    fn growth_past_a_memorys_own_maximum_is_refused_without_counting() {
        let mut limiter = GuestLimiter::new(2 << 20, 10, None);
        assert!(limiter.memory_growing(0, 64 << 10, Some(64 << 10)).unwrap());
        for _ in 0..100 {
            assert!(!limiter.memory_growing(64 << 10, 128 << 10, Some(64 << 10)).unwrap());
        }
        assert_eq!(limiter.take_refusal(), None, "the memory's own limit, not the sandbox's");
        assert!(limiter.memory_growing(0, (2 << 20) - (64 << 10), None).unwrap(), "nothing was counted");
    }

    #[test]
    fn the_cap_is_on_all_memories_together() {
        let mut limiter = GuestLimiter::for_component(1 << 20, 10);
        assert!(limiter.memory_growing(0, 600 << 10, None).unwrap());
        assert!(limiter.memory_growing(0, 400 << 10, None).unwrap());
        assert!(!limiter.memory_growing(0, 64 << 10, None).unwrap(), "a third memory past the total");
        assert_eq!(limiter.take_refusal(), Some(LimitExceeded::Memory { requested: 1064 << 10, limit: 1 << 20 }));
        assert!(!limiter.memory_growing(600 << 10, 700 << 10, None).unwrap(), "growing one past the total");
        assert!(limiter.memory_growing(400 << 10, 424 << 10, None).unwrap(), "up to the total");
    }

    #[test]
    fn the_hosts_mark_map_is_not_the_guests_memory() {
        let map = 64 << 10;
        let mut limiter = GuestLimiter::new(1 << 20, 10, Some(map));
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap(), "the module's memory, whole");
        assert!(limiter.memory_growing(0, map, None).unwrap(), "the map");
        assert!(!limiter.memory_growing(0, map, None).unwrap(), "a second memory of the map's size counts");
        // A memory of the map's size that comes first stands in for it: the same total.
        let mut limiter = GuestLimiter::new(1 << 20, 10, Some(map));
        assert!(limiter.memory_growing(0, map, None).unwrap());
        assert!(limiter.memory_growing(0, map, None).unwrap());
        assert!(limiter.memory_growing(map, 1 << 20, None).unwrap());
        assert!(!limiter.memory_growing(1 << 20, (1 << 20) + map, None).unwrap());
    }
}
