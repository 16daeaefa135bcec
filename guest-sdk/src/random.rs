//! Each task's own random numbers, the same on every run with the same seed.
//!
//! The host gives every task a 64-bit seed, derived from the pool's seed,
//! the task's name and its index in its map (see `docs/semantics.md`), so
//! no two tasks of a map share a stream, and a task's numbers do not depend
//! on which worker ran it, how inputs were chunked or in which order.
//!
//! [`rng`] returns a ChaCha8 generator keyed with that seed. Each call
//! within one task starts a new stream (0, 1, 2, …), so two generators of a
//! task never repeat each other's numbers, and the same task with the same
//! seed draws the same numbers in the same order. Natively (unit tests of
//! tasks) the seed is 0 unless set with [`with_seed`].

use chacha20::ChaCha8Rng;
use core::cell::Cell;
use core::convert::Infallible;
use rand_core::{SeedableRng, TryRng};

thread_local! {
    /// How many generators the running task has taken (reset per task).
    static STREAMS: Cell<u64> = const { Cell::new(0) };
}

/// This task's seed, from the host.
pub fn seed() -> u64 {
    imp::seed()
}

/// A new generator for this task: keyed with [`seed`], on the task's next
/// unused stream.
///
/// ```
/// let mut rng = wasmpool_guest::rng();
/// let x: f64 = rng.next_f64();
/// assert!((0.0..1.0).contains(&x));
/// ```
pub fn rng() -> TaskRng {
    let stream = STREAMS.with(|s| s.replace(s.get().wrapping_add(1)));
    TaskRng::new(seed(), stream)
}

/// Forgets the streams taken so far: called as each task starts.
pub(crate) fn start_task() {
    STREAMS.with(|s| s.set(0));
}

/// Runs `f` as a task whose seed is `seed` (native builds only, for unit
/// tests of tasks): [`seed`] and [`rng`] inside `f` behave as in a task the
/// host gave that seed.
#[cfg(not(target_arch = "wasm32"))]
pub fn with_seed<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let outer = imp::SEED.with(|s| s.replace(seed));
    let streams = STREAMS.with(|s| s.replace(0));
    let result = f();
    imp::SEED.with(|s| s.set(outer));
    STREAMS.with(|s| s.set(streams));
    result
}

/// A task's random number generator: ChaCha8, keyed with the task's seed
/// (its 8 little-endian bytes, then zeros), on one of the task's streams.
///
/// It implements `rand_core`'s `TryRng` (infallible), so the `rand`
/// crate's `Rng` methods and distributions work with it; the methods below
/// cover the common cases without that crate.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskRng(ChaCha8Rng);

impl TaskRng {
    /// The generator on `stream` of the task seeded with `seed`: the same
    /// numbers [`rng`] gives that task on its `stream + 1`-th call.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stream);
        TaskRng(rng)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        rand_core::Rng::next_u64(&mut self.0)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        rand_core::Rng::next_u32(&mut self.0)
    }

    /// A uniform float in [0, 1), with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (without modulo bias); `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "TaskRng::below(0): the range 0..0 is empty");
        // Lemire's method: a 128-bit product, rejecting the biased low part.
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Fills `dest` with random bytes.
    pub fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::Rng::fill_bytes(&mut self.0, dest);
    }
}

impl TryRng for TaskRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        self.0.try_fill_bytes(dest)
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    #[link(wasm_import_module = "wasmpool")]
    unsafe extern "C" {
        // wasmpool_abi::TASK_SEED_IMPORT (link_name takes a literal only).
        #[link_name = "task_seed"]
        fn host_task_seed() -> u64;
    }

    pub fn seed() -> u64 {
        // SAFETY: a host function without arguments or memory access.
        unsafe { host_task_seed() }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use core::cell::Cell;

    thread_local! {
        pub static SEED: Cell<u64> = const { Cell::new(0) };
    }

    pub fn seed() -> u64 {
        SEED.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_of_rng_is_a_new_stream_and_tasks_repeat() {
        let draw = || {
            let (mut a, mut b) = (rng(), rng());
            (a.next_u64(), b.next_u64())
        };
        let (first, second) = with_seed(7, draw);
        assert_ne!(first, second);
        assert_eq!(with_seed(7, draw), (first, second));
        assert_ne!(with_seed(8, draw).0, first);
        assert_eq!(TaskRng::new(7, 1).next_u64(), second);
    }

    #[test]
    fn with_seed_restores_the_outer_task() {
        with_seed(1, || {
            let before = rng().next_u64();
            with_seed(2, || assert_eq!(seed(), 2));
            assert_eq!(seed(), 1);
            assert_ne!(rng().next_u64(), before, "the outer task's stream count survives");
        });
    }

    #[test]
    fn below_stays_in_range_and_floats_in_the_unit_interval() {
        let mut rng = TaskRng::new(3, 0);
        for n in [1, 2, 3, 10, u64::MAX] {
            for _ in 0..200 {
                assert!(rng.below(n) < n);
            }
        }
        for _ in 0..1000 {
            assert!((0.0..1.0).contains(&rng.next_f64()));
        }
    }

    #[test]
    fn the_stream_is_chacha8_keyed_with_the_seed() {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&42u64.to_le_bytes());
        let mut reference = ChaCha8Rng::from_seed(key);
        reference.set_stream(5);
        let mut ours = TaskRng::new(42, 5);
        for _ in 0..100 {
            assert_eq!(ours.next_u64(), rand_core::Rng::next_u64(&mut reference));
        }
    }
}
