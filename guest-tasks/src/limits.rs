//! Tasks that push against the sandbox's limits, written as ordinary Rust
//! mistakes: a loop that never ends, unbounded recursion, an allocation too
//! large, a result too large, and a panic whose message itself panics.

use wasmpool_guest::task;

/// Counts `n` rounds of a small hash: `spin(u64::MAX)` effectively never
/// ends, which is what deadline and fuel tests need.
#[task]
pub fn spin(n: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut i = 0;
    while i < n {
        x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9).wrapping_add(i);
        i += 1;
    }
    x
}

/// Recurses `depth` levels and returns the depth reached: a large depth
/// overflows the Wasm stack.
#[task]
pub fn recurse(depth: u64) -> u64 {
    descend(depth)
}

#[inline(never)]
fn descend(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    1 + descend(std::hint::black_box(depth - 1))
}

/// Like [`recurse`], with a 1 KiB buffer per level whose address is taken,
/// so each level also uses the stack Rust keeps in linear memory (1 MiB).
#[task]
pub fn recurse_with_buffer(depth: u64) -> u64 {
    descend_with_buffer(depth)
}

#[inline(never)]
fn descend_with_buffer(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let mut buffer = [0u8; 1024];
    buffer[(depth % 1024) as usize] = 1;
    std::hint::black_box(&mut buffer);
    1 + descend_with_buffer(std::hint::black_box(depth - 1))
}

/// Allocates `bytes` bytes, touches them, and returns their sum: past the
/// pool's memory cap, the allocation fails.
#[task]
pub fn allocate(bytes: u64) -> u64 {
    let mut block = vec![0u8; bytes as usize];
    for i in (0..block.len()).step_by(4096) {
        block[i] = 1;
    }
    block.iter().map(|&b| u64::from(b)).sum()
}

/// A result of `len` bytes, for the output cap.
#[task]
pub fn big_result(len: u32) -> Vec<u8> {
    vec![7u8; len as usize]
}

/// A value whose formatting panics.
struct Explosive;

impl std::fmt::Display for Explosive {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("formatting the panic message panicked too")
    }
}

/// Panics with a message whose formatting panics, inside the panic hook:
/// Rust aborts, and the host must still report it.
#[task]
pub fn panic_in_panic_hook() {
    panic!("{}", Explosive);
}

/// Tries to allocate `bytes` bytes and says whether it could: a guest that
/// handles a refused allocation instead of failing.
#[task]
pub fn try_allocate(bytes: u64) -> bool {
    let mut block: Vec<u8> = Vec::new();
    block.try_reserve_exact(bytes as usize).is_ok()
}

/// The instance's memory size in 64 KiB pages (0 when run natively): shows
/// whether the tasks before it made the memory grow.
#[task]
pub fn memory_pages() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
