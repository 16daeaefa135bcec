//! The reset plan reads a module's untrusted bytes (sections, data
//! segments, code) and re-encodes its exports: any bytes must be refused
//! cleanly or give a valid module, never panic or run without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wasmpool::__internal::prepare_for_fuzzing(data);
});
