//! The task list a module carries in its `wasmpool.tasks` section: any
//! bytes must decode or be refused, never panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tasks) = wasmpool_abi::decode_manifest(data) {
        // Whatever decodes re-encodes to records that decode to the same
        // tasks (the bytes may differ: postcard accepts over-long varints).
        let again: Vec<u8> = tasks.iter().flat_map(|t| t.encode()).collect();
        assert_eq!(wasmpool_abi::decode_manifest(&again).as_ref(), Ok(&tasks));
    }
});
