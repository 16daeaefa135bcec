//! Arbitrary bytes as a task module: the pool must refuse them with an
//! error (or accept a valid module), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpool::{Allocator, Pool};

fuzz_target!(|data: &[u8]| {
    let _ = Pool::builder().module_bytes(data.to_vec()).workers(1).allocator(Allocator::OnDemand).build();
});
