//! The NaN canonicalization rewrite reads a module's untrusted bytes: any
//! bytes must be refused cleanly or rewritten into a valid module, never
//! panic or run without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wasmpool::__internal::rewrite_for_fuzzing(data);
});
