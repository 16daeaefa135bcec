//! Building, sizing and dropping pools; the allocator and its fallback.

use crate::common;

#[cfg(unix)]
use std::process::Command;
use wasmpool::{Allocator, AllocatorKind, Pool, TaskFailure};

#[test]
fn the_default_worker_count_is_the_available_parallelism() {
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).build().unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(pool.workers(), cores);
}

#[test]
fn on_demand_allocation_gives_the_same_results() {
    let inputs: Vec<(u64, u64)> = (0..16u64).map(|s| (5000, s)).collect();
    let pooled = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).build().unwrap();
    let on_demand =
        Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).allocator(Allocator::OnDemand).build().unwrap();
    assert_eq!(on_demand.allocator(), AllocatorKind::OnDemand);
    let a: Vec<u64> = pooled.map("pi_hits", inputs.clone()).unwrap();
    let b: Vec<u64> = on_demand.map("pi_hits", inputs).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_module_can_be_given_as_bytes() {
    let pool = Pool::builder().module_bytes(guest_tasks::wasm_bytes().unwrap()).workers(1).build().unwrap();
    assert_eq!(pool.call::<_, f64>("sqrt", 16.0f64).unwrap(), 4.0);
}

#[test]
fn dropping_the_pool_fails_queued_tasks_instead_of_hanging() {
    let pool = common::demo_pool(1);
    let handles: Vec<_> = (0..20u64).map(|s| pool.submit::<_, u64>("pi_hits", (200_000u64, s)).unwrap()).collect();
    drop(pool);
    let mut closed = 0;
    for handle in handles {
        match handle.wait() {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.failure, TaskFailure::PoolClosed);
                closed += 1;
            }
        }
    }
    assert!(closed > 0, "queued tasks should be failed, not run, once the pool is dropped");
}

/// Run by `pooling_falls_back_when_address_space_is_short` in a child
/// process whose address space is limited.
#[test]
#[ignore = "run in a child process by pooling_falls_back_when_address_space_is_short"]
fn child_pool_under_address_space_limit() {
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).build().unwrap();
    assert_eq!(pool.allocator(), AllocatorKind::OnDemand);
    let roots: Vec<f64> = pool.map("sqrt", [4.0f64, 9.0]).unwrap();
    assert_eq!(roots, vec![2.0, 3.0]);
    let forced = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).allocator(Allocator::Pooling).build();
    assert!(matches!(forced, Err(wasmpool::Error::Engine(m)) if m.contains("pooling allocator is unavailable")));
}

#[test]
#[cfg(unix)] // limits the child's address space with the shell's `ulimit -v`
fn pooling_falls_back_when_address_space_is_short() {
    // 6 GiB: far less than the pool's 6 slots of 4 GiB reservations.
    run_child_with_address_space(
        "child_pool_under_address_space_limit",
        6_291_456,
        "the child pool failed under the limit",
    );
}

/// Runs this binary's ignored test `test` in a child process whose address
/// space is limited to `limit_kib` (the shell's `ulimit -v`), and fails
/// with `what`, the child's status and its output if the child fails.
#[cfg(unix)]
fn run_child_with_address_space(test: &str, limit_kib: u64, what: &str) {
    let me = std::env::current_exe().unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {limit_kib} && exec \"$0\" --exact {} --ignored --test-threads=1",
            common::this_binarys_test(module_path!(), test)
        ))
        .arg(&me)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{what} ({}):\n{}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

/// The address space this process has mapped, in KiB.
#[cfg(target_os = "linux")]
fn vm_size_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Run by `a_worker_engine_that_cannot_be_reserved_falls_back_alone` in a
/// child process: prints what the process maps before any pool, and what
/// a 1-worker pool (one engine) adds.
#[test]
#[cfg(target_os = "linux")]
#[ignore = "run in a child process by a_worker_engine_that_cannot_be_reserved_falls_back_alone"]
fn child_measure_one_engine() {
    let before = vm_size_kib();
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(1).build().unwrap();
    let after = vm_size_kib();
    assert_eq!(pool.allocator(), AllocatorKind::Pooling);
    println!("baseline={before} engine={}", after - before);
}

/// Run by `a_worker_engine_that_cannot_be_reserved_falls_back_alone` in a
/// child process with room for one engine's pool but not two.
#[test]
#[cfg(target_os = "linux")]
#[ignore = "run in a child process by a_worker_engine_that_cannot_be_reserved_falls_back_alone"]
fn child_pool_with_room_for_one_engine() {
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).build().unwrap();
    assert_eq!(pool.allocator(), AllocatorKind::OnDemand, "the second worker's engine fell back");
    let roots: Vec<f64> = pool.task("sqrt").unwrap().chunk_size(1).map([4.0f64, 9.0, 16.0, 25.0]).unwrap();
    assert_eq!(roots, vec![2.0, 3.0, 4.0, 5.0]);
}

#[test]
#[cfg(target_os = "linux")] // reads /proc/self/status, limits the child with `ulimit -v`
fn a_worker_engine_that_cannot_be_reserved_falls_back_alone() {
    // Each thread worker has an engine of its own; when the address space
    // holds the first one's pool but not the second's, `Allocator::Auto`
    // must still build the pool.
    let me = std::env::current_exe().unwrap();
    let measured = Command::new(&me)
        .args(["--exact", &common::this_binarys_test(module_path!(), "child_measure_one_engine")])
        .args(["--ignored", "--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    assert!(measured.status.success(), "{}", String::from_utf8_lossy(&measured.stderr));
    let text = String::from_utf8_lossy(&measured.stdout);
    let value = |key: &str| -> u64 {
        let start = text.find(key).unwrap_or_else(|| panic!("no {key} in {text}")) + key.len();
        text[start..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (baseline, engine) = (value("baseline="), value("engine="));
    run_child_with_address_space(
        "child_pool_with_room_for_one_engine",
        baseline + engine * 3 / 2,
        &format!("the child pool failed with room for one engine ({baseline} KiB + {engine} KiB × 1.5)"),
    );
}

#[test]
fn pools_and_handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Pool>();
    send::<wasmpool::TaskHandle<Vec<u8>>>();
    send_sync::<wasmpool::Error>();
}
