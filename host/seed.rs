//! Per-task seeds: every task gets its own, derived from the pool's seed
//! (or a call's), the task's name and the task's index in its map.
//!
//! ```text
//! key      = first 8 bytes (little-endian) of
//!            SHA-256("wasmpool task seed v1\0" ‖ base as 8 LE bytes ‖ task name)
//! seed(i)  = mix(key + i · 0x9E3779B97F4A7C15)        (wrapping arithmetic)
//! mix(z)   = SplitMix64's finalizer, a bijection of u64
//! ```
//!
//! So within one map (one key) distinct indexes always get distinct seeds,
//! and nothing else enters: not the worker, the chunk, the order of
//! completion, the worker kind or the platform. The guest SDK keys a
//! ChaCha8 generator with the seed (`wasmpool_guest::rng`), and WASI's
//! `random_get` draws from the same key on a stream of its own.
//!
//! [`task_seed`] computes a task's seed outside the pool, to replay one
//! input natively (`wasmpool_guest::with_seed`) or in a unit test.

use chacha20::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Domain separation for the key hash: a new derivation gets a new tag.
const DOMAIN: &[u8] = b"wasmpool task seed v1\0";
/// SplitMix64's increment, odd so that `i · GAMMA` differs for every `i`.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// The ChaCha stream WASI's `random_get` draws from; the SDK's generators
/// use streams counted up from 0, so they never meet it.
const WASI_STREAM: u64 = u64::MAX;

/// The seed of the task `task` at `index` in a map run with seed `base`
/// (the pool's seed unless the call set its own).
///
/// ```
/// let a = wasmpool::task_seed(42, "pi_hits", 0);
/// assert_ne!(a, wasmpool::task_seed(42, "pi_hits", 1));
/// assert_ne!(a, wasmpool::task_seed(43, "pi_hits", 0));
/// assert_eq!(a, wasmpool::task_seed(42, "pi_hits", 0));
/// ```
pub fn task_seed(base: u64, task: &str, index: u64) -> u64 {
    seed_at(map_key(base, task), index)
}

/// The key shared by every task of one map.
pub(crate) fn map_key(base: u64, task: &str) -> u64 {
    let digest = Sha256::new().chain_update(DOMAIN).chain_update(base.to_le_bytes()).chain_update(task).finalize();
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(key)
}

/// The seed of the task at `index` of the map whose key is `key`.
pub(crate) fn seed_at(key: u64, index: u64) -> u64 {
    let mut z = key.wrapping_add(index.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh random pool seed, from the operating system.
pub(crate) fn random_seed() -> Result<u64, String> {
    getrandom::u64().map_err(|e| {
        format!(
            "cannot draw a random pool seed from the operating system: {e}; \
             give the pool a seed of your own"
        )
    })
}

/// The random bytes WASI's `random_get` gives the running task: its seed's
/// stream, started afresh at every task.
#[derive(Debug, Default)]
pub(crate) struct TaskRandom {
    seed: u64,
    /// Created at the first `random_get` of a task.
    stream: Option<ChaCha8Rng>,
}

impl TaskRandom {
    /// Starts the stream of a task with this seed.
    pub(crate) fn start(&mut self, seed: u64) {
        self.seed = seed;
        self.stream = None;
    }

    /// The running task's seed.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// The next bytes of the task's WASI stream.
    pub(crate) fn fill(&mut self, dest: &mut [u8]) {
        let seed = self.seed;
        self.stream.get_or_insert_with(|| Self::stream_of(seed)).fill_bytes(dest);
    }

    /// The WASI stream of the task with this seed, from its start.
    pub(crate) fn stream_of(seed: u64) -> ChaCha8Rng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(WASI_STREAM);
        rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_of_one_map_are_distinct_and_depend_on_base_and_task() {
        let key = map_key(7, "pi_hits");
        let seeds: std::collections::HashSet<u64> = (0..10_000).map(|i| seed_at(key, i)).collect();
        assert_eq!(seeds.len(), 10_000);
        assert_ne!(map_key(7, "pi_hits"), map_key(8, "pi_hits"));
        assert_ne!(map_key(7, "pi_hits"), map_key(7, "pi_hit"));
        assert_eq!(task_seed(7, "pi_hits", 3), seed_at(key, 3));
    }

    #[test]
    fn the_derivation_is_stable() {
        // Changing these numbers changes every seeded result users recorded:
        // that needs a new DOMAIN tag and a note in docs/semantics.md.
        assert_eq!(map_key(0, ""), 0xcd48_227d_4ff8_5568);
        assert_eq!(seed_at(0, 0), 0);
        assert_eq!(seed_at(0, 1), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn the_wasi_stream_restarts_with_each_task() {
        let mut random = TaskRandom::default();
        random.start(5);
        let mut first = [0u8; 16];
        random.fill(&mut first);
        let mut next = [0u8; 16];
        random.fill(&mut next);
        assert_ne!(first, next);
        random.start(5);
        let mut again = [0u8; 16];
        random.fill(&mut again);
        assert_eq!(first, again);
        random.start(6);
        random.fill(&mut again);
        assert_ne!(first, again);
    }
}
