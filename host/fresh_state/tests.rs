//! A reset instance against a new one, byte for byte: the memory after
//! random writes and a reset equals a new instance's memory, and the
//! globals their values; which modules can be reset at all.

use super::*;
use crate::engine::{Allocator, EngineSettings, create_engine};
use proptest::prelude::*;
use wasmtime::{Engine, Module, Store};

/// Memory of 4 Wasm pages; data in the first and second; a start function
/// writing a page data does not (and a global); functions to write any
/// byte and set the globals.
const MODULE: &str = r#"
(module
  (memory (export "memory") 4)
  (global $g (mut i32) (i32.const 7))
  (global $h (mut i64) (i64.const -1))
  (global $f (mut f64) (f64.const 0.5))
  (global $fixed i32 (i32.const 3))
  (data (i32.const 4100) "\01\02\03")
  (data (i32.const 70000) "hello, data")
  (data (i32.const 70004) "overlapping")
  (func $start
    (i32.store8 (i32.const 200000) (i32.const 9))
    (global.set $g (i32.const 8)))
  (start $start)
  (func (export "poke") (param $addr i32) (param $value i32)
    (i32.store8 (local.get $addr) (local.get $value)))
  (func (export "set_globals") (param i32 i64 f64)
    (global.set $g (local.get 0))
    (global.set $h (local.get 1))
    (global.set $f (local.get 2)))
  (func (export "globals") (result i32 i64 f64)
    (global.get $g) (global.get $h) (global.get $f))
)
"#;

const MEMORY: u32 = 4 * 65536;

fn engine(allocator: Allocator) -> Engine {
    let settings = EngineSettings {
        allocator,
        instance_slots: 2,
        max_memory: 1 << 20,
        max_table_elements: 100,
        max_stack: 1 << 20,
        epoch_interruption: false,
        consume_fuel: false,
    };
    create_engine(&settings).unwrap().0
}

struct Fixture {
    engine: Engine,
    module: Module,
    plan: ResetPlan,
    image: Arc<InitialImage>,
}

fn fixture(allocator: Allocator) -> Fixture {
    let (code, plan) = prepare(&wat::parse_str(MODULE).unwrap());
    let plan = plan.unwrap();
    let engine = engine(allocator);
    let module = Module::new(&engine, &code).unwrap();
    let image = Arc::new(InitialImage::new(&plan));
    Fixture { engine, module, plan, image }
}

fn instantiate(fixture: &Fixture) -> (Store<()>, Instance, Memory) {
    let mut store = Store::new(&fixture.engine, ());
    let instance = Instance::new(&mut store, &fixture.module, &[]).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    (store, instance, memory)
}

fn globals(store: &mut Store<()>, instance: &Instance) -> (i32, i64, u64) {
    let f = instance.get_typed_func::<(), (i32, i64, f64)>(&mut *store, "globals").unwrap();
    let (g, h, x) = f.call(store, ()).unwrap();
    (g, h, x.to_bits())
}

/// What a task does: bytes written, and the globals set.
#[derive(Debug, Clone)]
struct Task {
    writes: Vec<(u32, u8)>,
    globals: Option<(i32, i64, f64)>,
}

fn task() -> impl Strategy<Value = Task> {
    let write = (0..MEMORY, any::<u8>());
    let globals = proptest::option::of((any::<i32>(), any::<i64>(), any::<f64>()));
    (proptest::collection::vec(write, 0..40), globals).prop_map(|(writes, globals)| Task { writes, globals })
}

fn run(store: &mut Store<()>, instance: &Instance, task: &Task) {
    let poke = instance.get_typed_func::<(i32, i32), ()>(&mut *store, "poke").unwrap();
    for &(addr, value) in &task.writes {
        poke.call(&mut *store, (addr as i32, value as i32)).unwrap();
    }
    if let Some(values) = task.globals {
        let set = instance.get_typed_func::<(i32, i64, f64), ()>(&mut *store, "set_globals").unwrap();
        set.call(&mut *store, values).unwrap();
    }
}

fn scanner_or_skip() -> bool {
    if DirtyPages::get().is_none() {
        eprintln!("SKIPPED: this system has no PAGEMAP_SCAN, so instances are never reset in place");
        return false;
    }
    true
}

/// Runs `tasks` one after another in one instance reset between them, and
/// checks after each reset that it equals a new instance.
fn check_resets(allocator: Allocator, tasks: &[Task]) {
    let fixture = fixture(allocator);
    let (mut fresh_store, fresh_instance, fresh_memory) = instantiate(&fixture);
    let fresh = fresh_memory.data(&fresh_store).to_vec();
    let fresh_globals = globals(&mut fresh_store, &fresh_instance);
    drop(fresh_store);
    let (mut store, instance, memory) = instantiate(&fixture);
    let snapshot =
        Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
    for (i, task) in tasks.iter().enumerate() {
        run(&mut store, &instance, task);
        snapshot.restore(&mut store, memory).unwrap();
        let now = memory.data(&store);
        if let Some(at) = (0..fresh.len()).find(|&at| now[at] != fresh[at]) {
            panic!(
                "after task {i} ({allocator:?}) byte {at:#x} is {:#x}, a new instance has {:#x}",
                now[at], fresh[at]
            );
        }
        assert_eq!(globals(&mut store, &instance), fresh_globals, "after task {i} ({allocator:?})");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_reset_instance_equals_a_new_one(tasks in proptest::collection::vec(task(), 1..6)) {
        if scanner_or_skip() {
            check_resets(Allocator::Pooling, &tasks);
            check_resets(Allocator::OnDemand, &tasks);
        }
    }
}

#[test]
fn every_page_written_at_once_is_reset() {
    if !scanner_or_skip() {
        return;
    }
    let everything = Task { writes: (0..MEMORY).step_by(512).map(|a| (a, 0xa5)).collect(), globals: Some((1, 2, 3.0)) };
    for allocator in [Allocator::Pooling, Allocator::OnDemand] {
        check_resets(allocator, &[everything.clone(), everything.clone()]);
    }
}

#[test]
fn what_the_start_function_wrote_is_kept() {
    if !scanner_or_skip() {
        return;
    }
    let fixture = fixture(Allocator::Pooling);
    let (mut store, instance, memory) = instantiate(&fixture);
    let snapshot =
        Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
    run(&mut store, &instance, &Task { writes: vec![(200000, 1), (70000, 0)], globals: Some((0, 0, 0.0)) });
    snapshot.restore(&mut store, memory).unwrap();
    let data = memory.data(&store);
    assert_eq!(data[200000], 9);
    assert_eq!(&data[70000..70015], b"helloverlapping");
    assert_eq!(globals(&mut store, &instance).0, 8);
}

#[test]
fn a_grown_memory_is_not_restored() {
    if !scanner_or_skip() {
        return;
    }
    let fixture = fixture(Allocator::OnDemand);
    let (mut store, instance, memory) = instantiate(&fixture);
    let snapshot =
        Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
    memory.grow(&mut store, 1).unwrap();
    let why = snapshot.restore(&mut store, memory).unwrap_err();
    assert!(why.0.contains("grew from 262144 to 327680 bytes"), "{}", why.0);
}

#[test]
fn the_plan_exports_mutable_globals_and_reads_the_data() {
    let (code, plan) = prepare(&wat::parse_str(MODULE).unwrap());
    let plan = plan.unwrap();
    assert_eq!(plan.globals, ["__wasmpool_reset_global_0", "__wasmpool_reset_global_1", "__wasmpool_reset_global_2"]);
    assert_eq!(plan.segments.len(), 3);
    assert_eq!(plan.segments[1], plan::DataSegment { offset: 70000, bytes: b"hello, data".to_vec() });
    let engine = engine(Allocator::OnDemand);
    let module = Module::new(&engine, &code).unwrap();
    let exported: Vec<&str> = module.exports().map(|e| e.name()).collect();
    assert!(exported.contains(&"poke") && exported.contains(&"__wasmpool_reset_global_2"), "{exported:?}");
}

#[test]
fn modules_a_reset_cannot_restore_are_refused_with_the_reason() {
    let cases = [
        (
            r#"(module (table 1 funcref) (func (table.set 0 (i32.const 0) (ref.null func))) (export "f" (func 0)))"#,
            "changes a table",
        ),
        (
            r#"(module (table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1)))) (export "f" (func 0)))"#,
            "changes a table",
        ),
        (r#"(module (memory 1) (data "x") (func (data.drop 0)) (export "f" (func 0)))"#, "data.drop"),
        (r#"(module (table 1 funcref) (elem func 0) (func (elem.drop 0)) (export "f" (func 0)))"#, "elem.drop"),
        (r#"(module (import "a" "m" (memory 1)) (export "f" (memory 0)))"#, "imports a memory"),
        (r#"(module (memory 1 1 shared) (export "m" (memory 0)))"#, "shared"),
        (r#"(module (global (mut externref) (ref.null extern)) (export "g" (global 0)))"#, "reference type"),
        (r#"(module (memory 1) (export "__wasmpool_reset_global_0" (memory 0)))"#, "__wasmpool_reset_global_"),
        (r#"(module (memory 1) (func))"#, "no export section"),
    ];
    for (wat, reason) in cases {
        let bytes = wat::parse_str(wat).unwrap();
        let (code, plan) = prepare(&bytes);
        let why = plan.unwrap_err();
        assert!(why.contains(reason), "{wat}: {why}");
        assert_eq!(code, bytes, "a module that cannot be reset is compiled as it is");
    }
}

#[test]
fn the_initial_image_is_zero_where_no_segment_writes() {
    let plan = ResetPlan {
        segments: vec![
            plan::DataSegment { offset: 4094, bytes: vec![1, 2, 3, 4] },
            plan::DataSegment { offset: 4095, bytes: vec![9] },
            plan::DataSegment { offset: u64::MAX - 1, bytes: vec![5, 6, 7] },
        ],
        globals: Vec::new(),
    };
    let image = InitialImage::new(&plan);
    assert_eq!(&image.pages[&0][4094..], &[1, 9]);
    assert_eq!(&image.pages[&1][..3], &[3, 4, 0]);
    assert!(!image.pages.contains_key(&2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What the fuzz target checks, on mutations of a real module.
    #[test]
    fn mutated_modules_are_refused_or_stay_valid(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut wasm = wat::parse_str(MODULE).unwrap();
        for (at, byte) in flips {
            let at = at.index(wasm.len());
            wasm[at] = byte;
        }
        prepare_for_fuzzing(&wasm);
    }
}
