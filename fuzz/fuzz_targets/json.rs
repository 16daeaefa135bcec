//! JSON through a task's JSON entry point: the fuzzer's bytes are an input
//! line, which the host checks before the task runs, and the guest (an
//! echo) returns the line as its result, which the host checks and makes
//! compact. Either must be accepted or refused with a typed error, never
//! panic, and an accepted result must be one line holding the same JSON.
//! (Results that are not JSON at all are the proptests' part, in
//! `host/pool/json.rs`: here the host refuses such inputs before the guest.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wasmpool::{Allocator, Pool};
use wasmpool_abi::{DESCRIPTOR_VERSION, ParamDescriptor, TaskDescriptor};

/// A module whose task `t` (one argument) returns its argument bytes.
fn echo_pool() -> Pool {
    let record = TaskDescriptor {
        version: DESCRIPTOR_VERSION,
        name: "t".into(),
        params: vec![ParamDescriptor { name: "x".into(), ty: "serde_json::Value".into() }],
        result: "serde_json::Value".into(),
        doc: String::new(),
    }
    .encode();
    let record: String = record.iter().map(|b| format!("\\{b:02x}")).collect();
    // The header lives at 0: status 0 (OK), payload at the argument buffer
    // (address 64), payload length = the argument length.
    let wat = format!(
        r#"(module
            (memory (export "memory") 2)
            (func (export "wasmpool_abi_version") (result i32) i32.const 1)
            (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 64)
            (func $echo (param $ptr i32) (param $len i32) (result i32)
                (i32.store (i32.const 0) (i32.const 0))
                (i32.store (i32.const 4) (local.get $ptr))
                (i32.store (i32.const 8) (local.get $len))
                i32.const 0)
            (export "wasmpool_task_t" (func $echo))
            (export "wasmpool_json_t" (func $echo))
            (@custom "wasmpool.tasks" "{record}"))"#
    );
    let module = wat::parse_str(wat).expect("the echo module is valid WAT");
    Pool::builder()
        .module_bytes(module)
        .workers(1)
        .allocator(Allocator::OnDemand)
        .build()
        .expect("the echo module is a valid task module")
}

fuzz_target!(|data: &[u8]| {
    static POOL: OnceLock<Pool> = OnceLock::new();
    let pool = POOL.get_or_init(echo_pool);
    let task = pool.task("t").expect("the task exists").json().expect("it has a JSON entry point");
    if let Ok(result) = task.call(&data[..data.len().min(60_000)]) {
        assert!(!result.contains(['\n', '\r']), "a result must stay on one line: {result:?}");
        let before: Result<serde_json::Value, _> = serde_json::from_slice(data);
        let after: Result<serde_json::Value, _> = serde_json::from_str(&result);
        if let (Ok(before), Ok(after)) = (before, after) {
            assert_eq!(before, after, "compacting changed the value");
        }
    }
});
