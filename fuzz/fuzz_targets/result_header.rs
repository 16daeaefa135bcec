//! A hostile guest that returns a result header pointer and memory contents
//! of the fuzzer's choosing: the host must report an error or decode a
//! value, never read outside guest memory or panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmpool::{Allocator, Pool};
use wasmpool_abi::{DESCRIPTOR_VERSION, TaskDescriptor};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let header_ptr = i32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let memory: String = data[4..].iter().take(65536).map(|b| format!("\\{b:02x}")).collect();
    let record = TaskDescriptor {
        version: DESCRIPTOR_VERSION,
        name: "t".into(),
        params: vec![],
        result: "Vec<u8>".into(),
        doc: String::new(),
    }
    .encode();
    let record: String = record.iter().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 0) "{memory}")
            (func (export "wasmpool_abi_version") (result i32) i32.const 1)
            (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 0)
            (func (export "wasmpool_task_t") (param i32 i32) (result i32) i32.const {header_ptr})
            (@custom "wasmpool.tasks" "{record}"))"#
    );
    let module = wat::parse_str(wat).expect("the generated module is valid WAT");
    let pool = Pool::builder()
        .module_bytes(module)
        .workers(1)
        .allocator(Allocator::OnDemand)
        .build()
        .expect("the generated module is a valid task module");
    let _ = pool.call::<_, Vec<u8>>("t", ());
});
