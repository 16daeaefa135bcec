//! Tasks that fail on purpose, to show what the host reports.

use wasmpool_guest::task;

/// `a / b`, rounding toward zero. Panics when `b` is 0, like any Rust
/// division: the host receives the panic's message and location.
#[task]
pub fn divide(a: i64, b: i64) -> i64 {
    if b == 0 {
        panic!("cannot divide {a} by zero");
    }
    a / b
}

/// Fails with `Err` when `x` is odd.
#[task]
pub fn fail_if_odd(x: u32) -> Result<u32, String> {
    if x % 2 == 1 { Err(format!("{x} is odd")) } else { Ok(x / 2) }
}

/// Executes `unreachable` through a few named frames: the host sees a trap
/// with a backtrace naming them.
#[task]
pub fn trap(depth: u32) {
    trap_deeper(depth);
}

#[inline(never)]
fn trap_deeper(depth: u32) {
    if depth == 0 {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    } else {
        trap_deeper(std::hint::black_box(depth - 1));
    }
}
