//! Tasks that return their arguments, for round-trip tests of the encoding.

use wasmpool_guest::task;

/// Returns its four arguments unchanged.
#[task]
pub fn echo_mixed(a: i64, b: String, c: Vec<f64>, d: Option<u8>) -> (i64, String, Vec<f64>, Option<u8>) {
    (a, b, c, d)
}

/// Returns the bytes it was given.
#[task]
pub fn echo_bytes(data: Vec<u8>) -> Vec<u8> {
    data
}

/// Returns the length of its argument; arguments of any size cross intact.
#[task]
pub fn byte_len(data: &[u8]) -> u64 {
    data.len() as u64
}
