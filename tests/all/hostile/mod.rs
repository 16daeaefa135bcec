//! The hostile-guest suite: small modules that attack the pool, one test
//! each. Every test asserts the typed error, that it arrives within the
//! pool's limits, and that the pool (or, for modules refused at build, a
//! pool built beside it) then serves a normal task correctly. Each test runs
//! with thread workers and with worker processes.
//!
//! The modules are WAT files in `modules/`; each starts with a line naming
//! the standard parts it wants (`;; prelude: memory abi alloc ok`), which
//! [`assemble`] adds: the memory, the ABI version, an allocator, and a task
//! `ok` that returns 42. The compile-time bombs are generated as binary,
//! since their point is to be tiny files declaring huge counts.
//!
//! Issue 15's classes have a file each: `load.rs` (guest code run at load
//! that never returns), `scale.rs` (modules of 100,000 task records),
//! `text.rs` (escape sequences in everything a guest writes) and
//! `cache.rs` (planted precompiled modules).

mod bombs;
mod cache;
mod components;
use crate::common;
mod load;
mod scale;
mod text;

use std::time::{Duration, Instant};
use wasmpool::{Error, Event, LimitExceeded, ModuleError, Pool, PoolBuilder, ProcessConfig, TaskFailure, WorkerKind};

/// Every hostile pool's deadline: 400 ms, scaled under an emulator.
fn deadline() -> Duration {
    common::scaled(Duration::from_millis(400))
}
/// How much later than its limit an error may arrive on a loaded machine.
const SLACK: Duration = Duration::from_secs(5);
/// Every hostile pool's memory cap.
const MAX_MEMORY: usize = 16 << 20;
/// Every hostile pool's output cap.
const MAX_OUTPUT: usize = 1 << 20;

const KINDS: [WorkerKind; 2] = [WorkerKind::Threads, WorkerKind::Processes];

/// The parts a module may ask [`assemble`] for.
const PRELUDE: [(&str, &str); 4] = [
    ("memory", r#"(memory (export "memory") 1)"#),
    ("abi", r#"(func (export "wasmpool_abi_version") (result i32) i32.const 1)"#),
    ("alloc", r#"(func (export "wasmpool_alloc") (param i32) (result i32) i32.const 1024)"#),
    (
        "ok",
        r#"(data (i32.const 0) "\00\00\00\00\10\00\00\00\01\00\00\00")
           (data (i32.const 16) "\2a")
           (func (export "wasmpool_task_ok") (param i32 i32) (result i32) i32.const 0)
           (@custom "wasmpool.tasks" "\01\02ok\00\03u32\00")"#,
    ),
];

/// The WAT source of `modules/<name>.wat`.
fn source(name: &str) -> String {
    let path = format!("{}/tests/all/hostile/modules/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A module's bytes: its source wrapped in `(module …)` with the parts its
/// first line names.
fn assemble(source: &str) -> Vec<u8> {
    let wanted = source.lines().next().and_then(|line| line.strip_prefix(";; prelude:")).unwrap_or("");
    let wanted: Vec<&str> = wanted.split_whitespace().collect();
    let prelude: Vec<&str> = PRELUDE.iter().filter(|(part, _)| wanted.contains(part)).map(|(_, wat)| *wat).collect();
    // The module's own fields first: imports must precede the prelude's functions.
    wat::parse_str(format!("(module\n{source}\n{}\n)", prelude.join("\n"))).expect("the hostile module assembles")
}

fn module(name: &str) -> Vec<u8> {
    assemble(&source(name))
}

/// A harmless module: only the prelude.
fn harmless() -> Vec<u8> {
    assemble(";; prelude: memory abi alloc ok")
}

fn hostile_pool(kind: WorkerKind, bytes: Vec<u8>) -> PoolBuilder {
    Pool::builder()
        .module_bytes(bytes)
        .workers(1)
        .deadline(deadline())
        .max_memory(MAX_MEMORY)
        .max_output(MAX_OUTPUT)
        .disable_cache()
        .processes(ProcessConfig::new().max_retries(0))
        .worker_kind(kind) // Threads, or Processes with the setting above
}

/// Runs task `attack` of module `name` with `args` in a pool of `kind`,
/// checks the failure with `expected`, and that the pool then still serves.
fn attack_task<A: serde::Serialize + Copy>(
    kind: WorkerKind,
    name: &str,
    args: A,
    expected: impl Fn(WorkerKind, &TaskFailure) -> bool,
) {
    attack_task_with(kind, name, args, |b| b, expected);
}

fn attack_task_with<A: serde::Serialize + Copy>(
    kind: WorkerKind,
    name: &str,
    args: A,
    configure: impl Fn(PoolBuilder) -> PoolBuilder,
    expected: impl Fn(WorkerKind, &TaskFailure) -> bool,
) {
    let pool = configure(hostile_pool(kind, module(name)))
        .build()
        .unwrap_or_else(|e| panic!("{name} ({kind:?}): the pool should build: {e}"));
    let start = Instant::now();
    let error = pool.call::<_, ()>("attack", args).expect_err("the attack should fail");
    let elapsed = start.elapsed();
    let Error::Task(error) = error else { panic!("{name} ({kind:?}): not a task error: {error}") };
    assert_eq!(error.task, "attack");
    assert!(expected(kind, &error.failure), "{name} ({kind:?}): unexpected failure: {}", error.failure);
    assert!(elapsed < deadline() + SLACK, "{name} ({kind:?}): the error took {elapsed:?}");
    for _ in 0..3 {
        let answer: u32 = pool.call("ok", ()).unwrap_or_else(|e| panic!("{name} ({kind:?}): after the attack: {e}"));
        assert_eq!(answer, 42, "{name} ({kind:?})");
    }
}

/// Builds a pool of `bytes` of `kind`, checks the refusal with
/// `expected`, and that a pool built beside it keeps serving.
fn attack_build(kind: WorkerKind, name: &str, bytes: &[u8], expected: impl Fn(&Error) -> bool) {
    attack_build_with(kind, name, bytes, |b| b, expected);
}

fn attack_build_with(
    kind: WorkerKind,
    name: &str,
    bytes: &[u8],
    configure: impl Fn(PoolBuilder) -> PoolBuilder,
    expected: impl Fn(&Error) -> bool,
) {
    let bystander = hostile_pool(kind, harmless()).build().expect("the harmless pool builds");
    let start = Instant::now();
    let error = configure(hostile_pool(kind, bytes.to_vec())).build().expect_err("the module should be refused");
    let elapsed = start.elapsed();
    assert!(expected(&error), "{name} ({kind:?}): unexpected error: {error}");
    assert!(elapsed < deadline() + SLACK, "{name} ({kind:?}): the refusal took {elapsed:?}");
    assert_eq!(bystander.call::<_, u32>("ok", ()).expect("the bystander serves"), 42, "{name} ({kind:?})");
}

fn module_error(error: &Error) -> Option<&ModuleError> {
    match error {
        Error::InvalidModule { cause, .. } => Some(cause),
        _ => None,
    }
}

/// In thread workers an ABI violation fails the task; a worker process
/// stops itself after one (its state is not trusted) and the task, not
/// retried here, fails as a crash citing the violation.
fn abi_violation(kind: WorkerKind, failure: &TaskFailure, detail: &str) -> bool {
    match (kind, failure) {
        (WorkerKind::Threads, TaskFailure::Abi(message)) => message.contains(detail),
        (WorkerKind::Processes, TaskFailure::WorkerCrashed { cause, attempts: 1, .. }) => {
            cause.contains("broke the wasmpool ABI") && cause.contains(detail)
        }
        _ => false,
    }
}

each_kind! {
    fn an_infinite_loop_is_stopped_at_the_deadline(kind) {
        let pool = hostile_pool(kind, module("infinite_loop")).build().unwrap();
        let start = Instant::now();
        let failure = pool.call::<_, ()>("attack", ()).unwrap_err().as_task_error().unwrap().failure.clone();
        assert!(start.elapsed() >= deadline(), "{kind:?}: stopped before its deadline");
        assert_eq!(failure, TaskFailure::Limit(LimitExceeded::Deadline { limit: deadline() }));
        attack_task(kind, "infinite_loop", (), |_, f| matches!(f, TaskFailure::Limit(LimitExceeded::Deadline { .. })));
    }
}

each_kind! {
    fn an_infinite_loop_in_the_start_function_fails_the_build_at_the_deadline(kind) {
        // The pool's task deadline is shorter than its load deadline, so it
        // bounds loading too (more in load.rs).
        attack_build(kind, "infinite_loop_in_start", &module("infinite_loop_in_start"), |e| {
            module_error(e)
                == Some(&ModuleError::LoadTimeout { step: wasmpool::LoadStep::StartFunction, limit: deadline() })
        });
    }
}

each_kind! {
    fn unbounded_recursion_overflows_the_stack_cap(kind) {
        attack_task(kind, "unbounded_recursion", (), |_, f| matches!(f, TaskFailure::Limit(LimitExceeded::Stack { .. })));
    }
}

each_kind! {
    fn unbounded_recursion_in_the_start_function_fails_the_build(kind) {
        attack_build(kind, "recursion_in_start", &module("recursion_in_start"), |e| {
            matches!(module_error(e), Some(ModuleError::Limit(LimitExceeded::Stack { .. })))
        });
    }
}

each_kind! {
    fn growing_memory_until_refused_is_a_memory_limit(kind) {
        attack_task(kind, "memory_grow_until_refused", (), |_, f| {
            matches!(f, TaskFailure::Limit(LimitExceeded::Memory { requested, limit })
                if *limit == MAX_MEMORY as u64 && *requested > *limit)
        });
    }
}

each_kind! {
    fn a_second_memory_named_as_the_mark_map_shares_the_memory_limit(kind) {
        attack_task(kind, "second_memory_as_mark_map", (), |_, f| {
            matches!(f, TaskFailure::Limit(LimitExceeded::Memory { requested, limit })
                if *limit == MAX_MEMORY as u64 && *requested > *limit)
        });
    }
}

each_kind! {
    fn function_subtyping_is_refused_at_load(kind) {
        attack_build(kind, "subtype_check", &module("subtype_check"), |e| {
            matches!(module_error(e), Some(ModuleError::Compile(why)) if why.contains("gc"))
        });
    }
}

each_kind! {
    fn a_result_outside_memory_is_an_abi_violation(kind) {
        attack_task(kind, "result_outside_memory", (), |kind, f| abi_violation(kind, f, "outside guest memory"));
    }
}

each_kind! {
    fn a_4_gib_message_is_refused_before_it_is_read(kind) {
        attack_task(kind,
            "message_4gib",
            (),
            |_, f| matches!(f, TaskFailure::Limit(LimitExceeded::Output { what, len, .. }) if what == "message" && *len == Some(u64::from(u32::MAX))),
        );
    }
}

each_kind! {
    fn calling_send_forever_is_stopped_at_the_deadline(kind) {
        attack_task(kind, "send_forever", (), |_, f| matches!(f, TaskFailure::Limit(LimitExceeded::Deadline { .. })));
    }
}

each_kind! {
    fn a_message_outside_memory_is_an_abi_violation_when_someone_listens(kind) {
        let pool = hostile_pool(kind, module("message_outside_memory")).build().expect("the pool builds");
        let mut exchange = pool.exchange::<(), ()>();
        exchange.start("attack", ()).expect("the attack starts");
        let events: Vec<_> = exchange.by_ref().collect();
        match events.as_slice() {
            [Event::Finished { result: Err(e), .. }] => {
                assert!(abi_violation(kind, &e.failure, "outside guest memory"), "{kind:?}: {}", e.failure)
            }
            other => panic!("{kind:?}: expected only the task's failure, got {other:?}"),
        }
        assert_eq!(pool.call::<_, u32>("ok", ()).expect("the pool serves on"), 42, "{kind:?}");
    }
}

each_kind! {
    fn a_4_gib_result_is_refused_before_it_is_read(kind) {
        attack_task(kind, "result_length_4gib", (), |_, f| {
            *f == TaskFailure::Limit(LimitExceeded::Output {
                what: "result".into(),
                len: Some(u64::from(u32::MAX)),
                limit: MAX_OUTPUT as u64,
            })
        });
    }
}

each_kind! {
    fn a_trap_inside_the_guest_allocator_is_reported_with_its_frame(kind) {
        attack_task(kind, "trap_in_allocator", 5u64, |_, f| {
            matches!(f, TaskFailure::Trap { kind, frames }
                if kind.contains("unreachable") && frames.iter().any(|frame| frame.contains("broken_alloc")))
        });
    }
}

each_kind! {
    fn an_allocator_returning_addresses_outside_memory_is_an_abi_violation(kind) {
        attack_task(kind, "alloc_outside_memory", 5u64, |kind, f| abi_violation(kind, f, "outside memory"));
    }
}

each_kind! {
    fn a_forbidden_import_is_refused_by_name(kind) {
        attack_build(kind, "forbidden_import", &module("forbidden_import"), |e| {
            module_error(e) == Some(&ModuleError::ForbiddenImport { module: "env".into(), name: "system".into() })
        });
    }
}

each_kind! {
    fn bytes_that_are_not_wasm_are_refused(kind) {
        attack_build(kind, "not_wasm", b"#!/bin/sh\nrm -rf /\n", |e| module_error(e) == Some(&ModuleError::NotWasm));
    }
}

each_kind! {
    fn an_empty_file_is_refused(kind) {
        attack_build(kind, "empty", b"", |e| module_error(e) == Some(&ModuleError::Empty));
    }
}

each_kind! {
    fn a_truncated_module_is_refused(kind) {
        let whole = harmless();
        for cut in [9, whole.len() / 2, whole.len() - 1] {
            attack_build(kind, "truncated", &whole[..cut], |e| matches!(module_error(e), Some(ModuleError::Compile(_))));
        }
    }
}

each_kind! {
    fn a_module_of_a_million_functions_is_refused_before_compiling(kind) {
        let bytes = bombs::functions(1_000_000);
        assert!(bytes.len() < 4 << 20, "the bomb is {} bytes", bytes.len());
        attack_build(kind, "many_functions", &bytes, |e| {
            matches!(module_error(e), Some(ModuleError::Limit(LimitExceeded::Functions { limit: 100_000, .. })))
        });
    }
}

each_kind! {
    fn a_component_holding_a_million_functions_is_refused_before_compiling(kind) {
        let bytes = bombs::in_component(&bombs::functions(1_000_000));
        attack_build(kind, "component_of_many_functions", &bytes, |e| {
            matches!(module_error(e), Some(ModuleError::Limit(LimitExceeded::Functions { limit: 100_000, .. })))
        });
    }
}

each_kind! {
    fn a_module_declaring_millions_of_locals_is_refused_before_compiling(kind) {
        // One function declaring five million locals in a dozen bytes, and 40
        // functions each within the per-function limit whose total is too much.
        for bytes in [bombs::locals(1, 5_000_000), bombs::locals(40, 40_000)] {
            assert!(bytes.len() < 1024, "the bomb is {} bytes", bytes.len());
            attack_build(kind, "many_locals", &bytes, |e| {
                matches!(module_error(e), Some(ModuleError::Limit(LimitExceeded::Locals { limit: 1_000_000, .. })))
            });
        }
    }
}

each_kind! {
    fn a_table_of_ten_million_elements_is_refused(kind) {
        attack_build(kind, "table_bomb", &module("table_bomb"), |e| {
            module_error(e)
                == Some(&ModuleError::Limit(LimitExceeded::Table {
                    requested: 10_000_000,
                    limit: wasmpool::DEFAULT_MAX_TABLE_ELEMENTS as u64,
                }))
        });
    }
}

each_kind! {
    fn growing_a_table_by_ten_million_is_a_table_limit(kind) {
        attack_task(kind, "table_grow_bomb", (), |_, f| {
            matches!(f, TaskFailure::Limit(LimitExceeded::Table { requested: 10_000_001, .. }))
        });
    }
}

each_kind! {
    fn a_4_gib_initial_memory_is_refused(kind) {
        attack_build(kind, "huge_initial_memory", &module("huge_initial_memory"), |e| {
            module_error(e)
                == Some(&ModuleError::Limit(LimitExceeded::Memory { requested: 1 << 32, limit: MAX_MEMORY as u64 }))
        });
    }
}

each_kind! {
    fn a_panic_reported_with_garbage_while_panicking_is_still_a_panic(kind) {
        attack_task(kind, "panic_inside_panic_hook", (), |_, f| {
            matches!(f, TaskFailure::Panic { message, location }
                if message == "<unreadable>" && location.starts_with("<unreadable>:"))
        });
    }
}

each_kind! {
    fn garbage_where_the_result_header_belongs_is_an_abi_violation(kind) {
        attack_task(kind, "garbage_header", (), |kind, f| abi_violation(kind, f, "unknown result status"));
    }
}

each_kind! {
    fn a_result_header_outside_memory_is_an_abi_violation(kind) {
        attack_task(kind, "header_outside_memory", (), |kind, f| abi_violation(kind, f, "the result header"));
    }
}

each_kind! {
    fn a_start_function_that_traps_fails_the_build(kind) {
        attack_build(kind,
            "start_function_traps",
            &module("start_function_traps"),
            |e| matches!(module_error(e), Some(ModuleError::Instantiation(why)) if why.contains("divide by zero")),
        );
    }
}

each_kind! {
    fn a_module_of_another_abi_version_is_refused(kind) {
        attack_build(kind, "wrong_abi_version", &module("wrong_abi_version"), |e| {
            module_error(e) == Some(&ModuleError::AbiVersion { found: 99, expected: 1 })
        });
    }
}

each_kind! {
    fn a_2_mib_error_message_is_cut_to_64_kib(kind) {
        attack_task(kind, "huge_error_message", (), |_, f| {
            matches!(f, TaskFailure::Failed(message)
                if message.len() < 65 * 1024 && message.ends_with(&format!("({} more bytes cut)", (2 << 20) - 65536)))
        });
    }
}

each_kind! {
    fn a_loop_burns_its_fuel_and_stops_at_the_same_point_everywhere(kind) {
        attack_task_with(kind,
            "fuel_burner",
            (),
            |b| b.fuel(1_000_000),
            |_, f| *f == TaskFailure::Limit(LimitExceeded::Fuel { limit: 1_000_000 }),
        );
    }
}

each_kind! {
    fn a_shared_memory_is_refused(kind) {
        attack_build(kind, "shared_memory", &module("shared_memory"), |e| {
            matches!(module_error(e), Some(ModuleError::Compile(_) | ModuleError::WrongExportType { .. }))
        });
    }
}

each_kind! {
    fn a_task_never_sees_what_an_earlier_task_left_in_memory(kind) {
        // Instance slots are reused, and their memory reset in place where the
        // kernel allows it: the reset must be complete, data segments included.
        let pool = hostile_pool(kind, module("leftovers")).build().unwrap();
        for round in 0..20 {
            assert_eq!(
                pool.call::<_, u32>("write", ()).unwrap(),
                0x77,
                "{kind:?}, round {round}: write sees its own byte"
            );
            assert_eq!(pool.call::<_, u32>("read", ()).unwrap(), 42, "{kind:?}, round {round}");
            assert_eq!(pool.call::<_, u32>("ok", ()).unwrap(), 42, "{kind:?}, round {round}");
        }
    }
}
