//! Class 1: guest code that runs while a module loads (its start function,
//! `_initialize`, `wasmpool_abi_version`, the init task) and never returns.
//! Loading is bounded by the load deadline whatever the other settings:
//! in thread pools without epoch checks (the default, where such code
//! could not be stopped at all), with them, and in worker processes.

use super::{SLACK, assemble, common, harmless, module, module_error};
use std::time::{Duration, Instant};
use wasmpool::{Error, LoadStep, ModuleError, Pool, PoolBuilder, ProcessConfig, WasiConfig};

/// The load deadline of these pools: 300 ms, scaled under an emulator.
fn load_deadline() -> Duration {
    common::scaled(Duration::from_millis(300))
}

/// A pool of `bytes` with no task deadline, in one of the three ways load
/// code can run.
fn pool(way: Way, bytes: Vec<u8>) -> PoolBuilder {
    let builder = Pool::builder().module_bytes(bytes).workers(1).load_deadline(load_deadline()).disable_cache();
    match way {
        Way::PlainThreads => builder,
        Way::InterruptibleThreads => builder.interruptible(true),
        Way::Processes => builder.processes(ProcessConfig::new().max_retries(0)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Way {
    /// Thread workers whose code has no epoch checks (the default).
    PlainThreads,
    /// Thread workers with epoch checks.
    InterruptibleThreads,
    /// Worker processes.
    Processes,
}

const WAYS: [Way; 3] = [Way::PlainThreads, Way::InterruptibleThreads, Way::Processes];

/// Builds a pool of `bytes` each way, expects the load to stop at the load
/// deadline naming `step`, and a pool built beside it to keep serving.
fn refused_at_the_load_deadline(
    name: &str,
    bytes: &[u8],
    configure: impl Fn(PoolBuilder) -> PoolBuilder,
    step: LoadStep,
) {
    for way in WAYS {
        let bystander = pool(way, harmless()).build().expect("the harmless pool builds");
        let start = Instant::now();
        let error = configure(pool(way, bytes.to_vec())).build().expect_err("the module should be refused");
        let elapsed = start.elapsed();
        assert_eq!(
            module_error(&error),
            Some(&ModuleError::LoadTimeout { step: step.clone(), limit: load_deadline() }),
            "{name} ({way:?}): {error}"
        );
        assert!(elapsed >= load_deadline(), "{name} ({way:?}): refused after {elapsed:?}, before its deadline");
        assert!(elapsed < load_deadline() + SLACK, "{name} ({way:?}): the refusal took {elapsed:?}");
        let text = error.to_string();
        assert!(text.contains("invalid task module <bytes>") && text.contains("did not return within"), "{text}");
        assert_eq!(bystander.call::<_, u32>("ok", ()).expect("the bystander serves"), 42, "{name} ({way:?})");
    }
}

#[test]
fn a_start_function_that_never_returns_is_stopped_at_the_load_deadline() {
    refused_at_the_load_deadline(
        "infinite_loop_in_start",
        &module("infinite_loop_in_start"),
        |b| b,
        LoadStep::StartFunction,
    );
}

#[test]
fn a_start_function_that_calls_an_endless_loop_is_stopped_too() {
    refused_at_the_load_deadline("start_calls_a_loop", &module("start_calls_a_loop"), |b| b, LoadStep::StartFunction);
}

#[test]
fn an_abi_version_that_never_returns_is_stopped_at_the_load_deadline() {
    refused_at_the_load_deadline(
        "abi_version_never_returns",
        &module("abi_version_never_returns"),
        |b| b,
        LoadStep::AbiVersion,
    );
}

#[test]
fn an_init_task_that_never_returns_is_stopped_at_the_load_deadline() {
    refused_at_the_load_deadline(
        "init_task_never_returns",
        &module("init_task_never_returns"),
        |b| b.init_task("hang", ()),
        LoadStep::InitTask("hang".into()),
    );
}

#[test]
fn an_initialize_that_never_returns_is_stopped_at_the_load_deadline() {
    refused_at_the_load_deadline(
        "initialize_never_returns",
        &module("initialize_never_returns"),
        |b| b.wasi(WasiConfig::new()),
        LoadStep::Initialize,
    );
}

each_kind! {
    fn a_task_deadline_shorter_than_the_load_deadline_bounds_loading_too(kind) {
        let short = common::scaled(Duration::from_millis(200));
        let start = Instant::now();
        let error = pool(Way::PlainThreads, module("infinite_loop_in_start"))
            .worker_kind(kind)
            .deadline(short)
            .build()
            .expect_err("refused");
        assert_eq!(
            module_error(&error),
            Some(&ModuleError::LoadTimeout { step: LoadStep::StartFunction, limit: short }),
            "{kind:?}: {error}"
        );
        assert!(start.elapsed() < load_deadline() + SLACK, "{kind:?}");
    }
}

#[test]
fn load_code_sure_to_return_needs_no_deadline_of_its_own() {
    // A start function without loops or calls, and the prelude's constant
    // `wasmpool_abi_version`: nothing to guard, in every way.
    let bytes = assemble(
        ";; prelude: memory abi alloc ok\n(global $g (mut i32) (i32.const 0))\n(func $start (global.set $g (i32.const 7)))\n(start $start)",
    );
    for way in WAYS {
        let pool = pool(way, bytes.clone()).build().unwrap_or_else(|e| panic!("{way:?}: {e}"));
        assert_eq!(pool.call::<_, u32>("ok", ()).unwrap(), 42, "{way:?}");
    }
}

#[test]
fn a_zero_load_deadline_is_refused_as_configuration() {
    let error = Pool::builder().module_bytes(harmless()).load_deadline(Duration::ZERO).build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
}

#[test]
fn inspecting_a_module_runs_none_of_its_code() {
    // Its start function never returns, yet its tasks can be read at once.
    for name in ["infinite_loop_in_start", "abi_version_never_returns", "init_task_never_returns"] {
        let start = Instant::now();
        let tasks = Pool::builder().module_bytes(module(name)).disable_cache().inspect().expect("inspected");
        assert!(tasks.iter().any(|t| t.name == "ok"), "{name}");
        assert!(start.elapsed() < SLACK, "{name}: inspecting took {:?}", start.elapsed());
    }
    // The same checks as `build` short of running it: a broken module is refused.
    let error = Pool::builder().module_bytes(b"\0asm\x01\0\0\0\x99".to_vec()).inspect().unwrap_err();
    assert!(matches!(module_error(&error), Some(ModuleError::Compile(_))), "{error}");
}
