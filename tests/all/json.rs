//! Calling tasks with JSON, through the entry point the SDK gives every
//! task: no glue per task, the task's own types decide what JSON means.

use crate::common;

use wasmpool::{Error, Pool, TaskFailure, WorkerKind};

fn pools() -> Vec<Pool> {
    let processes = Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(2)
        .worker_kind(WorkerKind::Processes)
        .build()
        .expect("the process pool builds");
    vec![common::demo_pool(2), processes]
}

#[test]
fn json_in_json_out_for_one_several_and_no_arguments() {
    for pool in pools() {
        assert_eq!(pool.task("sqrt").unwrap().json().unwrap().call("2.25").unwrap(), "1.5");
        assert_eq!(pool.task("add").unwrap().json().unwrap().call("[2, 40]").unwrap(), "42");
        assert_eq!(pool.task("noop").unwrap().json().unwrap().call("null").unwrap(), "null");
        assert_eq!(pool.task("noop").unwrap().json().unwrap().call("[]").unwrap(), "null");
        // Vectors, tuples and `Result`s, as serde puts them.
        let transfers = pool.task("apply_transfers").unwrap().json().unwrap();
        assert_eq!(transfers.call("[[10, 0], [[0, 1, 4]]]").unwrap(), "[6,4]");
        let overdrawn = common::failure(transfers.call("[[10, 0], [[0, 1, 40]]]"));
        assert!(matches!(overdrawn, TaskFailure::Failed(_)), "{overdrawn}");
    }
}

#[test]
fn json_results_equal_postcard_results() {
    let pool = common::demo_pool(2);
    let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..20u32).map(|y| (y, 40u32, 20u32, 50u32))).unwrap();
    let lines: Vec<String> = (0..20).map(|y| format!("[{y}, 40, 20, 50]")).collect();
    let json: Vec<Vec<u8>> = pool
        .task("mandel_row")
        .unwrap()
        .json()
        .unwrap()
        .imap(&lines)
        .unwrap()
        .map(|r| serde_json::from_str(&r.unwrap()).unwrap())
        .collect();
    assert_eq!(json, rows);
}

#[test]
fn floats_cross_json_exactly_in_both_directions() {
    // Shortest texts whose nearest f64 a best-effort parser misses by an ulp
    // (the first was found by the Python package's property test).
    let pool = common::demo_pool(2);
    let xs: [f64; 6] = [4.629088889864009e-193, 2.2250738585072014e-308, 9007199254740993.0, 0.1, 1e300, 5e-324];
    let typed: Vec<f64> = pool.map("sqrt", xs).unwrap();
    let lines: Vec<String> = xs.iter().map(|x| serde_json::to_string(x).unwrap()).collect();
    let json = pool.task("sqrt").unwrap().json().unwrap();
    let texts: Vec<String> = json.imap(&lines).unwrap().map(Result::unwrap).collect();
    for ((x, typed), text) in xs.iter().zip(&typed).zip(&texts) {
        assert_eq!(typed.to_bits(), x.sqrt().to_bits(), "typed sqrt({x})");
        let read: f64 = text.parse().unwrap();
        assert_eq!(read.to_bits(), typed.to_bits(), "JSON sqrt({x}) gave {text}");
    }
}

#[test]
fn bad_inputs_fail_alone_and_name_their_index() {
    for pool in pools() {
        let add = pool.task("add").unwrap().json().unwrap();
        let inputs = ["[1, 2]", "[1, 2", "[1]", "[\"x\", 2]", "[3, 4]"];
        let results: Vec<_> = add.imap(inputs).unwrap().collect();
        assert_eq!(results[0], Ok("3".to_owned()));
        assert_eq!(results[4], Ok("7".to_owned()));
        for (index, expected) in [(1, "not JSON"), (2, "but the array has 1")] {
            let error = results[index].as_ref().unwrap_err();
            assert_eq!(error.index, index);
            assert!(
                matches!(&error.failure, TaskFailure::InvalidJson(why) if why.contains(expected)),
                "{index}: {error}"
            );
        }
        // The type is the guest's to check: serde says what it expected.
        let error = results[3].as_ref().unwrap_err();
        assert!(matches!(&error.failure, TaskFailure::BadArguments(why) if why.contains("invalid type")), "{error}");
    }
}

#[test]
fn unordered_maps_return_every_index_once() {
    let pool = common::demo_pool(2);
    let inputs: Vec<String> = (0..500).map(|i| format!("[{i}, 1]")).collect();
    let mut seen: Vec<(usize, String)> = pool
        .task("add")
        .unwrap()
        .json()
        .unwrap()
        .imap_unordered(&inputs)
        .unwrap()
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, (0..500).map(|i| (i, (i + 1).to_string())).collect::<Vec<_>>());
    assert_eq!(pool.stats().tasks(), 500);
    // Which worker ran how many is the scheduler's business (on a loaded
    // machine one worker may take all 500); every worker that ran some was busy.
    let stats = pool.stats();
    assert_eq!(stats.workers.iter().map(|w| w.tasks).sum::<u64>(), 500);
    assert!(stats.workers.iter().filter(|w| w.tasks > 0).all(|w| w.busy > std::time::Duration::ZERO));
}

#[test]
fn a_module_without_json_entry_points_says_how_to_get_them() {
    // A task module written by hand: only the postcard export.
    let record = wasmpool_abi::TaskDescriptor {
        version: wasmpool_abi::DESCRIPTOR_VERSION,
        name: "t".into(),
        params: vec![],
        result: "()".into(),
        doc: String::new(),
    }
    .encode();
    let record: String = record.iter().map(|b| format!("\\{b:02x}")).collect();
    let module = |json_export: &str| {
        wat::parse_str(format!(
            r#"(module
                (memory (export "memory") 1)
                (func (export "wasmpool_abi_version") (result i32) i32.const 1)
                (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 8)
                (func (export "wasmpool_task_t") (param i32 i32) (result i32) i32.const 0)
                {json_export}
                (@custom "wasmpool.tasks" "{record}"))"#
        ))
        .unwrap()
    };
    let pool = Pool::builder().module_bytes(module("")).workers(1).build().unwrap();
    assert!(!pool.tasks()[0].json);
    let error = pool.task("t").unwrap().json().err().expect("no JSON entry point");
    assert!(matches!(&error, Error::NoJsonEntry { task } if task == "t"), "{error}");
    assert!(error.to_string().contains("`json` feature"), "{error}");

    // A JSON entry point of the wrong type is refused with the module.
    let wrong = module(r#"(func (export "wasmpool_json_t") (param i32) (result i32) i32.const 0)"#);
    let error = Pool::builder().module_bytes(wrong).workers(1).build().unwrap_err();
    assert!(error.to_string().contains("wasmpool_json_t"), "{error}");
}
