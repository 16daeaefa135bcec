//! The guest SDK's allocator: small tasks are served from the arena in the
//! module's initial memory, so their instances never grow (and a fresh
//! instance after them needs no `mprotect`); large ones still grow memory.

use wasmpool::{InstanceMode, Pool};

#[test]
fn small_allocations_leave_memory_at_its_initial_size_and_large_ones_grow_it() {
    let pool = Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(1)
        .instance_mode(InstanceMode::PerWorker)
        .build()
        .unwrap();
    let initial: u64 = pool.call("memory_pages", ()).unwrap();
    assert!(initial > 0);
    // Arguments, a 200 KB block and the result: all inside the arena.
    let sum: u64 = pool.call("allocate", (200_000u64,)).unwrap();
    assert_eq!(sum, guest_tasks::limits::allocate(200_000));
    let echoed: Vec<u8> = pool.call("echo_bytes", (vec![5u8; 100_000],)).unwrap();
    assert_eq!(echoed.len(), 100_000);
    let after_small: u64 = pool.call("memory_pages", ()).unwrap();
    assert_eq!(after_small, initial, "small tasks grew the memory");
    // 4 MiB does not fit the 1 MiB arena: memory grows, and the block works.
    let sum: u64 = pool.call("allocate", (4u64 << 20,)).unwrap();
    assert_eq!(sum, guest_tasks::limits::allocate(4 << 20));
    let after_large: u64 = pool.call("memory_pages", ()).unwrap();
    assert!(after_large >= initial + 64, "{after_large} pages after a 4 MiB block, {initial} before");
}

#[test]
fn a_fresh_instance_starts_from_the_initial_size_after_a_task_that_grew() {
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).workers(1).build().unwrap();
    let initial: u64 = pool.call("memory_pages", ()).unwrap();
    let _: u64 = pool.call("allocate", (4u64 << 20,)).unwrap();
    let next: u64 = pool.call("memory_pages", ()).unwrap();
    assert_eq!(next, initial);
}
