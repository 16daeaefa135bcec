//! Randomness as crates of the registry draw it, from the operating system
//! through the `getrandom` crate: on either wasm32 target, the task's own
//! seeded stream (built into the modules only, where `getrandom` is a
//! dependency).

use wasmpool_guest::task;

/// 16 bytes from each version of the `getrandom` crate (0.2, 0.3, 0.4), as
/// crates such as `rand`, `uuid` and `ahash` draw them.
#[task]
pub fn getrandom_bytes() -> Result<Vec<[u8; 16]>, String> {
    let (mut a, mut b, mut c) = ([0u8; 16], [0u8; 16], [0u8; 16]);
    getrandom_02::getrandom(&mut a).map_err(|e| format!("getrandom 0.2: {e}"))?;
    getrandom_03::fill(&mut b).map_err(|e| format!("getrandom 0.3: {e}"))?;
    getrandom_04::fill(&mut c).map_err(|e| format!("getrandom 0.4: {e}"))?;
    Ok(vec![a, b, c])
}
