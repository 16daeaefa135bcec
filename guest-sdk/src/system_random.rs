//! The "system randomness" of a task: what crates such as `rand`
//! (`rand::rng()`), `uuid` (v4) and `ahash` ask the operating system for,
//! through the `getrandom` crate, comes from the task's own seed.
//!
//! On `wasm32-wasip1` nothing is needed here: `getrandom` (every version)
//! calls WASI's `random_get`, which the host answers with the task's seeded
//! stream. On `wasm32-unknown-unknown` there is no operating system, and
//! `getrandom` refuses to build unless told where its bytes come from; the
//! SDK provides that source (feature `getrandom`, on by default):
//! - `getrandom` 0.2 (rand 0.8): its `custom` feature, which the SDK turns
//!   on, calls `__getrandom_custom`, defined here;
//! - `getrandom` 0.3 and 0.4 (rand 0.9 and later, uuid): with
//!   `--cfg getrandom_backend="custom"` in the crate's rustflags (the
//!   `.cargo/config.toml` that `wasmpool new` writes sets it for
//!   `wasm32-unknown-unknown`), they call `__getrandom_v03_custom`, defined
//!   here.
//!
//! Both give the same bytes WASI's `random_get` gives a task with the same
//! seed (ChaCha8 keyed with the seed, on stream 2^64 − 1, restarted at each
//! task), so a crate's random results are the same on either target.

use crate::random::TaskRng;
use core::cell::RefCell;

/// The stream of the task's system randomness, as the host's WASI stream.
#[cfg_attr(not(all(target_arch = "wasm32", target_os = "unknown")), allow(dead_code))]
const SYSTEM_STREAM: u64 = u64::MAX;

thread_local! {
    /// The running task's system stream, created at its first use.
    static SYSTEM: RefCell<Option<TaskRng>> = const { RefCell::new(None) };
}

/// Forgets the last task's stream: called as each task starts.
pub(crate) fn start_task() {
    SYSTEM.with(|s| s.borrow_mut().take());
}

/// Fills `dest` with the next bytes of the running task's system stream.
#[cfg_attr(not(all(target_arch = "wasm32", target_os = "unknown")), allow(dead_code))]
pub(crate) fn fill(dest: &mut [u8]) {
    SYSTEM.with(|system| {
        let mut system = system.borrow_mut();
        let stream = system.get_or_insert_with(|| TaskRng::new(crate::random::seed(), SYSTEM_STREAM));
        stream.fill_bytes(dest);
    });
}

/// `getrandom` 0.2's custom source (its `register_custom_getrandom!`
/// expands to the same function): 0 for success.
///
/// # Safety
/// `dest` must be valid for writes of `len` bytes, as `getrandom` ensures.
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "getrandom"))]
#[unsafe(no_mangle)]
unsafe fn __getrandom_custom(dest: *mut u8, len: usize) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { fill_raw(dest, len) };
    0
}

/// `getrandom` 0.3's and 0.4's custom source. Their `Error` is a
/// `NonZeroI32` on wasm32, so `Result<(), NonZeroI32>` is the same type in
/// memory and in calls; this function never fails.
///
/// # Safety
/// `dest` must be valid for writes of `len` bytes, as `getrandom` ensures.
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "getrandom"))]
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) -> Result<(), core::num::NonZeroI32> {
    // SAFETY: guaranteed by the caller.
    unsafe { fill_raw(dest, len) };
    Ok(())
}

/// [`fill`] on a buffer `getrandom` hands over as a pointer and a length,
/// zeroed first, as it may be uninitialized.
///
/// # Safety
/// `dest` must be valid for writes of `len` bytes.
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "getrandom"))]
unsafe fn fill_raw(dest: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    let buf = unsafe {
        core::ptr::write_bytes(dest, 0, len);
        core::slice::from_raw_parts_mut(dest, len)
    };
    fill(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::with_seed;
    use chacha20::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    fn reference(seed: u64, len: usize) -> Vec<u8> {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(u64::MAX);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn the_stream_is_the_hosts_wasi_stream_read_in_turn() {
        let drawn = with_seed(42, || {
            start_task();
            let (mut a, mut b) = ([0u8; 16], [0u8; 32]);
            fill(&mut a);
            fill(&mut b);
            [a.as_slice(), b.as_slice()].concat()
        });
        assert_eq!(drawn, reference(42, 48));
    }

    #[test]
    fn each_task_starts_its_stream_afresh_from_its_own_seed() {
        let first = |seed| {
            with_seed(seed, || {
                start_task();
                let mut bytes = [0u8; 8];
                fill(&mut bytes);
                bytes
            })
        };
        assert_eq!(first(7), first(7));
        assert_ne!(first(7), first(8));
        assert_eq!(first(8).to_vec(), reference(8, 8));
    }
}
