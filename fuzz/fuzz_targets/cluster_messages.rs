//! Cluster mode: any bytes a rank receives over MPI must decode into one
//! of the cluster's messages or fail cleanly, never panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wasmpool::__internal::decode_messages_for_fuzzing(data);
});
