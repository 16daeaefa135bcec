//! The worker-process transport: any byte stream on a pipe must decode into
//! messages or stop with an error, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wasmpool::__internal::decode_frames_for_fuzzing(data);
});
