//! Every kind of error, each naming the task and the input, and none of them
//! poisoning the pool.

use crate::common;

use common::{demo_pool, failure, task_error};
use serde::Serialize;
use wasmpool::{Error, ModuleError, Pool, TaskFailure};

#[test]
fn an_unknown_task_suggests_the_closest_names_then_lists_the_tasks_that_exist() {
    let pool = demo_pool(1);
    match pool.call::<_, f64>("sqr", 2.0f64).unwrap_err() {
        Error::NoSuchTask { task, available } => {
            assert_eq!(task, "sqr");
            assert!(available.contains(&"sqrt".to_string()), "{available:?}");
            let message = Error::NoSuchTask { task, available }.to_string();
            assert!(message.starts_with("no task `sqr`; did you mean `sqrt`? the module has: add, "), "{message}");
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn a_panic_reports_its_message_and_location() {
    let pool = demo_pool(1);
    let err = task_error(pool.map::<_, i64>("divide", [(6i64, 3i64), (1, 0)]).unwrap_err());
    assert_eq!(err.task, "divide");
    assert_eq!(err.index, 1);
    match err.failure {
        TaskFailure::Panic { message, location } => {
            assert_eq!(message, "cannot divide 1 by zero");
            assert!(location.starts_with("guest-tasks/src/failures.rs:"), "{location}");
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[test]
fn a_trap_reports_its_kind_and_a_named_backtrace() {
    let pool = demo_pool(1);
    match failure(pool.call::<_, ()>("trap", 3u32)) {
        TaskFailure::Trap { kind, frames } => {
            assert!(kind.contains("unreachable"), "{kind}");
            let deeper = frames.iter().filter(|f| f.contains("trap_deeper")).count();
            assert!(deeper >= 2, "expected recursive trap_deeper frames in {frames:#?}");
        }
        other => panic!("expected a trap, got {other}"),
    }
}

#[test]
fn an_err_result_is_a_task_failure_with_its_message() {
    let pool = demo_pool(1);
    assert_eq!(pool.call::<_, i64>("parse_int", " 42 ").unwrap(), 42);
    let f = failure(pool.call::<_, i64>("parse_int", "forty-two"));
    assert_eq!(f, TaskFailure::Failed("invalid digit found in string".into()));
}

#[derive(Serialize)]
struct Three(i64, i64, i64);
#[derive(Serialize)]
struct One(i64);

#[test]
fn arguments_the_guest_cannot_decode_are_reported() {
    let pool = demo_pool(1);
    let surplus = failure(pool.call::<_, i64>("add", Three(1, 2, 3)));
    assert!(matches!(&surplus, TaskFailure::BadArguments(m) if m.contains("left over")), "{surplus}");
    let missing = failure(pool.call::<_, i64>("add", One(1)));
    assert!(matches!(&missing, TaskFailure::BadArguments(m) if m.contains("missing arguments")), "{missing}");
    let not_utf8 = failure(pool.call::<_, u64>("word_count", vec![0xffu8, 0xfe]));
    assert!(matches!(not_utf8, TaskFailure::BadArguments(_)), "{not_utf8}");
}

#[test]
fn primitive_type_mismatches_are_caught_before_running() {
    let pool = demo_pool(1);
    let f = failure(pool.map::<_, f64>("sqrt", 0..10u32));
    assert_eq!(f, TaskFailure::ArgumentTypes("parameter `x` of `sqrt` is `f64`, but the host passed `u32`".into()));
    let f = failure(pool.call::<_, f32>("sqrt", 2.0f64));
    assert!(matches!(f, TaskFailure::DecodeResult { .. }), "{f}");
    let f = failure(pool.call::<_, i64>("add", (1i64, 2i64, 3i64)));
    assert!(matches!(&f, TaskFailure::ArgumentTypes(m) if m.contains("takes 2 argument(s)")), "{f}");
}

#[test]
fn a_result_of_another_type_does_not_decode() {
    let pool = demo_pool(1);
    // The check cannot see through `Vec`, but the strict decoder can.
    let f = failure(pool.call::<_, Vec<u64>>("echo_mixed", (1i64, "x", vec![1.5f64], Some(2u8))));
    assert!(matches!(f, TaskFailure::DecodeResult { .. }), "{f}");
}

#[test]
fn failing_tasks_do_not_poison_the_pool() {
    let pool = demo_pool(1);
    for _ in 0..3 {
        assert!(pool.call::<_, i64>("divide", (1i64, 0i64)).is_err());
        assert!(pool.call::<_, ()>("trap", 0u32).is_err());
        assert!(pool.call::<_, u32>("fail_if_odd", 1u32).is_err());
        assert_eq!(pool.call::<_, i64>("divide", (9i64, 3i64)).unwrap(), 3);
    }
    let mixed = pool.map_each::<_, i64>("divide", [(4i64, 2i64), (1, 0), (9, 3)]).unwrap();
    assert_eq!(mixed[0].as_ref().unwrap(), &2);
    assert!(mixed[1].is_err());
    assert_eq!(mixed[2].as_ref().unwrap(), &3);
}

fn module_error(builder: wasmpool::PoolBuilder) -> ModuleError {
    match builder.build().unwrap_err() {
        Error::InvalidModule { cause, .. } => cause,
        other => panic!("expected an invalid module, got: {other}"),
    }
}

const MINIMAL: &str = r#"
    (memory (export "memory") 1)
    (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 1024)
"#;

#[test]
fn modules_that_are_not_wasm_are_refused() {
    assert_eq!(module_error(Pool::builder().module_bytes(Vec::new())), ModuleError::Empty);
    assert_eq!(module_error(Pool::builder().module_bytes(b"fn main() {}".to_vec())), ModuleError::NotWasm);
    let whole = std::fs::read(guest_tasks::WASM_PATH).unwrap();
    let truncated = whole[..whole.len() / 2].to_vec();
    assert!(matches!(module_error(Pool::builder().module_bytes(truncated)), ModuleError::Compile(_)));
}

#[test]
fn a_module_of_another_abi_version_is_refused() {
    let wat = format!(r#"(module {MINIMAL} (func (export "wasmpool_abi_version") (result i32) i32.const 2))"#);
    let cause = module_error(Pool::builder().module_bytes(wat::parse_str(wat).unwrap()));
    assert_eq!(cause, ModuleError::AbiVersion { found: 2, expected: 1 });
    assert_eq!(cause.to_string(), "it implements wasmpool ABI version 2, this host implements version 1");
}

#[test]
fn a_module_missing_an_export_is_refused() {
    let wat =
        r#"(module (memory (export "memory") 1) (func (export "wasmpool_abi_version") (result i32) i32.const 1))"#;
    let cause = module_error(Pool::builder().module_bytes(wat::parse_str(wat).unwrap()));
    assert!(matches!(&cause, ModuleError::MissingExport { name, .. } if name == "wasmpool_alloc"), "{cause}");
}

#[test]
fn a_missing_module_file_is_named() {
    let err = Pool::builder().module_file("/nonexistent/tasks.wasm").build().unwrap_err();
    let message = err.to_string();
    assert!(message.contains("/nonexistent/tasks.wasm"), "{message}");
    match err {
        Error::ModuleFile { path, source } => {
            assert_eq!(path, std::path::Path::new("/nonexistent/tasks.wasm"));
            // The OS's own words differ (Linux: "No such file or directory";
            // Windows: "The system cannot find the path specified").
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{message}");
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn bad_configurations_are_refused_at_build_time() {
    assert!(matches!(Pool::builder().build(), Err(Error::Config(_))));
    let zero = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(0).build();
    assert!(matches!(zero, Err(Error::Config(m)) if m.contains("at least one worker")));
    let unknown_init = Pool::builder().module_file(guest_tasks::WASM_PATH).init_task("nope", ()).build();
    assert!(matches!(unknown_init, Err(Error::NoSuchTask { .. })));
    let failing_init = Pool::builder().module_file(guest_tasks::WASM_PATH).init_task("fail_if_odd", 1u32).build();
    let err = task_error(failing_init.unwrap_err());
    assert_eq!(err.task, "fail_if_odd");
}
