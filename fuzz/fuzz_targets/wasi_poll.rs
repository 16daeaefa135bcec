//! WASI's `poll_oneoff`: the subscriptions a guest writes in its memory
//! must decode or be refused with an errno, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wasmpool::__internal::decode_subscriptions_for_fuzzing(data);
});
