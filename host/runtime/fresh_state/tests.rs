//! A reset instance against a new one, byte for byte: the memory after
//! random writes and a reset equals a new instance's memory, and the
//! globals their values; which modules can be reset at all.

use super::*;
use crate::runtime::engine::{Allocator, EngineSettings, create_engine};
use proptest::prelude::*;
use wasmtime::{Engine, Module, Store};

/// Memory of 4 Wasm pages; data in the first and second; a start function
/// writing a page data does not (and a global); functions making every kind
/// of write (plain, wide, SIMD, bulk) and setting the globals. (Atomics
/// need wasmtime's threads, which pools leave off: their rewrite is checked
/// for validity below.)
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
  (data $passive "passive bytes")
  (func $start
    (i32.store8 (i32.const 200000) (i32.const 9))
    (global.set $g (i32.const 8)))
  (start $start)
  (func (export "poke") (param $addr i32) (param $value i32)
    (i32.store8 (local.get $addr) (local.get $value)))
  (func (export "poke64") (param $addr i32) (param $value i64)
    (i64.store offset=3 (local.get $addr) (local.get $value)))
  (func (export "poke_far") (param $addr i32) (param $value i32)
    (i32.store8 offset=70000 (local.get $addr) (local.get $value)))
  (func (export "poke_f64") (param $addr i32) (param $value f64)
    (f64.store (local.get $addr) (local.get $value)))
  (func (export "poke_v128") (param $addr i32) (param $value i64)
    (v128.store (local.get $addr) (i64x2.splat (local.get $value))))
  (func (export "fill") (param $to i32) (param $value i32) (param $len i32)
    (memory.fill (local.get $to) (local.get $value) (local.get $len)))
  (func (export "copy") (param $to i32) (param $from i32) (param $len i32)
    (memory.copy (local.get $to) (local.get $from) (local.get $len)))
  (func (export "init") (param $to i32)
    (memory.init $passive (local.get $to) (i32.const 2) (i32.const 9)))
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
        component: false,
        instance_slots: 2,
        max_memory: 1 << 20,
        max_table_elements: 100,
        max_stack: 1 << 20,
        epoch_interruption: false,
        consume_fuel: false,
    };
    create_engine(&settings).unwrap().0
}

/// How the written pages are found: marks left by the writes, or the
/// kernel's page scan.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Finding {
    Marks,
    Scan,
}

struct Fixture {
    engine: Engine,
    module: Module,
    plan: ResetPlan,
    image: Arc<InitialImage>,
}

fn fixture(allocator: Allocator, finding: Finding) -> Fixture {
    let marks = (finding == Finding::Marks).then_some(1 << 20);
    let (code, plan) = prepare(&wat::parse_str(MODULE).unwrap(), marks, false);
    let plan = plan.unwrap();
    assert_eq!(plan.marks, finding == Finding::Marks);
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

/// One write a task makes (addresses keep every write in bounds).
#[derive(Debug, Clone)]
enum Write {
    Byte(u32, u8),
    Wide(u32, i64),
    Far(u32, u8),
    Float(u32, f64),
    Simd(u32, i64),
    Fill(u32, u8, u32),
    Copy(u32, u32, u32),
    Init(u32),
}

fn write() -> impl Strategy<Value = Write> {
    let at = 0..MEMORY - 16;
    let range = (0..MEMORY, 0..3 * 4096u32).prop_map(|(to, len)| (to.min(MEMORY - len), len));
    prop_oneof![
        4 => (at.clone(), any::<u8>()).prop_map(|(a, v)| Write::Byte(a, v)),
        1 => (at.clone(), any::<i64>()).prop_map(|(a, v)| Write::Wide(a, v)),
        1 => (0..MEMORY - 70001, any::<u8>()).prop_map(|(a, v)| Write::Far(a, v)),
        1 => (at.clone(), any::<f64>()).prop_map(|(a, v)| Write::Float(a, v)),
        1 => (at.clone(), any::<i64>()).prop_map(|(a, v)| Write::Simd(a, v)),
        1 => (range.clone(), any::<u8>()).prop_map(|((to, len), v)| Write::Fill(to, v, len)),
        1 => (range, 0..MEMORY).prop_map(|((to, len), from)| Write::Copy(to, from.min(MEMORY - len), len)),
        1 => at.prop_map(Write::Init),
    ]
}

/// What a task does: its writes, and the globals it sets.
#[derive(Debug, Clone)]
struct Task {
    writes: Vec<Write>,
    globals: Option<(i32, i64, f64)>,
}

fn task() -> impl Strategy<Value = Task> {
    let globals = proptest::option::of((any::<i32>(), any::<i64>(), any::<f64>()));
    (proptest::collection::vec(write(), 0..30), globals).prop_map(|(writes, globals)| Task { writes, globals })
}

fn call<P: wasmtime::WasmParams>(store: &mut Store<()>, instance: &Instance, name: &str, params: P) {
    let f = instance.get_typed_func::<P, ()>(&mut *store, name).unwrap();
    f.call(&mut *store, params).unwrap();
}

fn run(store: &mut Store<()>, instance: &Instance, task: &Task) {
    for write in &task.writes {
        match *write {
            Write::Byte(a, v) => call(store, instance, "poke", (a as i32, v as i32)),
            Write::Wide(a, v) => call(store, instance, "poke64", (a as i32, v)),
            Write::Far(a, v) => call(store, instance, "poke_far", (a as i32, v as i32)),
            Write::Float(a, v) => call(store, instance, "poke_f64", (a as i32, v)),
            Write::Simd(a, v) => call(store, instance, "poke_v128", (a as i32, v)),
            Write::Fill(to, v, len) => call(store, instance, "fill", (to as i32, v as i32, len as i32)),
            Write::Copy(to, from, len) => call(store, instance, "copy", (to as i32, from as i32, len as i32)),
            Write::Init(to) => call(store, instance, "init", to as i32),
        }
    }
    if let Some(values) = task.globals {
        call(store, instance, "set_globals", values);
    }
}

/// Whether `finding` works here (the scan needs Linux's PAGEMAP_SCAN).
fn available(finding: Finding) -> bool {
    if finding == Finding::Scan && DirtyPages::get().is_none() {
        eprintln!("SKIPPED (scan only): this system has no PAGEMAP_SCAN");
        return false;
    }
    true
}

/// Runs `tasks` one after another in one instance reset between them, and
/// checks after each reset that it equals a new instance.
fn check_resets(allocator: Allocator, finding: Finding, tasks: &[Task]) {
    let fixture = fixture(allocator, finding);
    let (mut fresh_store, fresh_instance, fresh_memory) = instantiate(&fixture);
    let fresh = fresh_memory.data(&fresh_store).to_vec();
    let fresh_globals = globals(&mut fresh_store, &fresh_instance);
    drop(fresh_store);
    let (mut store, instance, memory) = instantiate(&fixture);
    let mut snapshot =
        Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
    for (i, task) in tasks.iter().enumerate() {
        run(&mut store, &instance, task);
        snapshot.restore(&mut store, memory).unwrap();
        let now = memory.data(&store);
        if let Some(at) = (0..fresh.len()).find(|&at| now[at] != fresh[at]) {
            panic!(
                "after task {i} ({allocator:?}, {finding:?}) byte {at:#x} is {:#x}, a new instance has {:#x}",
                now[at], fresh[at]
            );
        }
        assert_eq!(globals(&mut store, &instance), fresh_globals, "after task {i} ({allocator:?}, {finding:?})");
    }
}

const WAYS: [(Allocator, Finding); 4] = [
    (Allocator::Pooling, Finding::Marks),
    (Allocator::OnDemand, Finding::Marks),
    (Allocator::Pooling, Finding::Scan),
    (Allocator::OnDemand, Finding::Scan),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if std::env::var_os("WASMPOOL_CROSS_TEST").is_some() { 16 } else { 64 }))]

    #[test]
    fn a_reset_instance_equals_a_new_one(tasks in proptest::collection::vec(task(), 1..6)) {
        for (allocator, finding) in WAYS {
            if available(finding) {
                check_resets(allocator, finding, &tasks);
            }
        }
    }
}

#[test]
fn every_page_written_at_once_is_reset() {
    let everything = Task {
        writes: (0..MEMORY - 16).step_by(509).map(|a| Write::Wide(a, -1)).collect(),
        globals: Some((1, 2, 3.0)),
    };
    let bulk = Task { writes: vec![Write::Fill(0, 0xa5, MEMORY), Write::Copy(1, 0, MEMORY - 1)], globals: None };
    for (allocator, finding) in WAYS {
        if available(finding) {
            check_resets(allocator, finding, &[everything.clone(), bulk.clone(), everything.clone()]);
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs swap turned on: .ci/swap runs it"]
fn pages_swapped_out_are_reset_too() {
    use crate::runtime::swap_for_tests::{PAGE, page_out, require_swap};
    require_swap();
    for (allocator, finding) in WAYS {
        if !available(finding) {
            continue;
        }
        let fixture = fixture(allocator, finding);
        let (mut store, instance, memory) = instantiate(&fixture);
        let fresh = memory.data(&store).to_vec();
        let mut snapshot =
            Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
        let pages = [0usize, 1, 17, 40, 63];
        let task = Task {
            writes: pages.iter().map(|&page| Write::Fill((page * PAGE) as u32, 0xa5, PAGE as u32)).collect(),
            globals: None,
        };
        run(&mut store, &instance, &task);
        page_out(memory.data_ptr(&store), memory.data_size(&store), &pages);
        snapshot.restore(&mut store, memory).unwrap();
        let now = memory.data(&store);
        if let Some(at) = (0..fresh.len()).find(|&at| now[at] != fresh[at]) {
            panic!("{allocator:?}, {finding:?}: byte {at:#x} of a swapped-out page was not reset");
        }
    }
}

#[test]
fn what_the_start_function_wrote_is_kept() {
    for (allocator, finding) in WAYS {
        if !available(finding) {
            continue;
        }
        let fixture = fixture(allocator, finding);
        let (mut store, instance, memory) = instantiate(&fixture);
        let mut snapshot =
            Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
        let task = Task { writes: vec![Write::Byte(200000, 1), Write::Byte(70000, 0)], globals: Some((0, 0, 0.0)) };
        run(&mut store, &instance, &task);
        snapshot.restore(&mut store, memory).unwrap();
        let data = memory.data(&store);
        assert_eq!(data[200000], 9, "{finding:?}");
        assert_eq!(&data[70000..70015], b"helloverlapping", "{finding:?}");
        assert_eq!(globals(&mut store, &instance).0, 8, "{finding:?}");
    }
}

#[test]
fn atomic_writes_are_rewritten_into_a_valid_module() {
    let wat = r#"(module (memory 1) (export "m" (memory 0))
      (func (export "f") (param i32 i64) (result i64)
        (drop (i32.atomic.rmw8.add_u offset=5 (local.get 0) (i32.const 1)))
        (i64.atomic.store32 (local.get 0) (local.get 1))
        (i64.atomic.rmw.cmpxchg offset=8 (local.get 0) (local.get 1) (i64.const 3))))"#;
    let (code, plan) = prepare(&wat::parse_str(wat).unwrap(), Some(1 << 20), false);
    assert!(plan.unwrap().marks);
    wasmtime::wasmparser::Validator::new_with_features(wasmtime::wasmparser::WasmFeatures::all())
        .validate_all(&code)
        .unwrap();
    // One mark after each write, and the one in the function added for
    // bulk writes.
    assert_eq!(mark_stores(&code), 3 + 1);
}

/// How many stores to the mark map (memory 1) a module's code has.
fn mark_stores(code: &[u8]) -> usize {
    use wasmtime::wasmparser::{Operator, Parser, Payload};
    let mut marks = 0;
    for payload in Parser::new(0).parse_all(code) {
        if let Ok(Payload::CodeSectionEntry(body)) = payload {
            let mut reader = body.get_operators_reader().unwrap();
            while !reader.eof() {
                if let Operator::I32Store8 { memarg } | Operator::I32Store16 { memarg } = reader.read().unwrap()
                    && memarg.memory == 1
                {
                    marks += 1;
                }
            }
        }
    }
    marks
}

#[test]
fn a_grown_memory_is_not_restored() {
    let fixture = fixture(Allocator::OnDemand, Finding::Marks);
    let (mut store, instance, memory) = instantiate(&fixture);
    let mut snapshot =
        Snapshot::take(&mut store, &instance, memory, &fixture.plan, fixture.image.clone()).unwrap().unwrap();
    memory.grow(&mut store, 1).unwrap();
    let why = snapshot.restore(&mut store, memory).unwrap_err();
    assert!(why.0.contains("grew from 262144 to 327680 bytes"), "{}", why.0);
}

#[test]
fn the_plan_exports_mutable_globals_and_reads_the_data() {
    let (code, plan) = prepare(&wat::parse_str(MODULE).unwrap(), Some(1 << 20), false);
    let plan = plan.unwrap();
    assert!(plan.marks);
    assert_eq!(plan.globals, ["__wasmpool_reset_global_0", "__wasmpool_reset_global_1", "__wasmpool_reset_global_2"]);
    assert_eq!(plan.segments.len(), 3);
    assert_eq!(plan.segments[1], plan::DataSegment { offset: 70000, bytes: b"hello, data".to_vec() });
    let engine = engine(Allocator::OnDemand);
    let module = Module::new(&engine, &code).unwrap();
    let exported: Vec<&str> = module.exports().map(|e| e.name()).collect();
    for name in ["poke", "__wasmpool_reset_global_2", "__wasmpool_written_pages"] {
        assert!(exported.contains(&name), "{name} in {exported:?}");
    }
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
        (r#"(module (memory 1) (export "__wasmpool_written_pages" (memory 0)))"#, "reserves"),
        (r#"(module (memory 1) (func))"#, "no export section"),
        // Invalid (there is no memory 1), and would become valid with the map.
        (
            r#"(module (memory 1) (export "m" (memory 0)) (func (export "f") (i32.store8 1 (i32.const 0) (i32.const 0))))"#,
            "not valid",
        ),
    ];
    for (wat, reason) in cases {
        let bytes = wat::parse_str(wat).unwrap();
        let (code, plan) = prepare(&bytes, Some(1 << 20), false);
        let why = plan.unwrap_err();
        assert!(why.contains(reason), "{wat}: {why}");
        assert_eq!(code, bytes, "a module that cannot be reset is compiled as it is");
    }
}

#[test]
fn the_initial_image_is_zero_where_no_segment_writes() {
    let plan = ResetPlan {
        segments: vec![
            plan::DataSegment { offset: PAGE as u64 - 2, bytes: vec![1, 2, 3, 4] },
            plan::DataSegment { offset: PAGE as u64 - 1, bytes: vec![9] },
            plan::DataSegment { offset: u64::MAX - 1, bytes: vec![5, 6, 7] },
            plan::DataSegment { offset: (1 << 32) - 2, bytes: vec![8, 9, 10] },
        ],
        globals: Vec::new(),
        marks: false,
    };
    let image = InitialImage::new(&plan);
    assert_eq!(&image.page(0).unwrap()[PAGE - 2..], &[1, 9]);
    assert_eq!(&image.page(1).unwrap()[..3], &[3, 4, 0]);
    assert!(image.page(2).is_none());
    assert_eq!(&image.page((1 << 32) / PAGE - 1).unwrap()[PAGE - 2..], &[8, 9], "what lies past 4 GiB is left out");
    assert_eq!(image.pages.len(), 3);
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
