//! Class 2: load time must grow no faster than n log n with the module.
//! Modules listing 100,000 task records (valid, with a repeated name, with
//! a record whose export is missing) are loaded or refused well within a
//! minute; a check comparing every record with every other (as the
//! duplicate check once did: 12.6 s in a release build) takes minutes in
//! this debug build. `cargo bench --bench load` records the growth.

use super::common::records::{Records, module_with_records, task_name};
use super::{common, module_error};
use std::time::{Duration, Instant};
use wasmpool::{Error, ModuleError, Pool};

const RECORDS: usize = 100_000;

/// How long loading such a module may take here: far more than it needs,
/// far less than a quadratic check would.
fn bound() -> Duration {
    common::scaled(Duration::from_secs(60))
}

fn load(shape: Records, kind: wasmpool::WorkerKind) -> (wasmpool::Result<Pool>, Duration) {
    let bytes = module_with_records(RECORDS, shape);
    let start = Instant::now();
    let pool = Pool::builder().module_bytes(bytes).workers(1).worker_kind(kind).disable_cache().build();
    (pool, start.elapsed())
}

each_kind! {
    fn a_module_of_100000_tasks_loads_and_serves_every_one(kind) {
        let (pool, took) = load(Records::Valid, kind);
        let pool = pool.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(took < bound(), "{kind:?}: loading took {took:?}");
        assert_eq!(pool.tasks().len(), RECORDS);
        for i in [0, RECORDS / 2, RECORDS - 1] {
            assert_eq!(pool.call::<_, u32>(&task_name(i), ()).unwrap(), 42, "{kind:?}: task {i}");
        }
        // An unknown name lists a few of the 100,000, not all of them.
        let Err(error) = pool.task("nope") else { panic!("no task `nope` was found") };
        let Error::NoSuchTask { available, .. } = &error else { panic!("{error}") };
        assert_eq!(available.len(), RECORDS);
        let shown = error.to_string();
        assert!(shown.ends_with(&format!("and {} more", RECORDS - 20)), "{shown}");
        assert!(shown.len() < 1000, "{} bytes", shown.len());
    }
}

#[test]
fn a_module_of_100000_records_with_one_repeated_name_is_refused_quickly() {
    let (pool, took) = load(Records::Duplicated, wasmpool::WorkerKind::Threads);
    let error = pool.expect_err("refused");
    assert!(took < bound(), "refusing took {took:?}");
    assert_eq!(
        module_error(&error),
        Some(&ModuleError::Manifest(format!("task `{}` is described twice", task_name(0))))
    );
}

#[test]
fn a_module_of_100000_records_missing_one_export_is_refused_quickly() {
    let (pool, took) = load(Records::MissingExport, wasmpool::WorkerKind::Threads);
    let error = pool.expect_err("refused");
    assert!(took < bound(), "refusing took {took:?}");
    assert!(
        matches!(module_error(&error), Some(ModuleError::MissingExport { name, .. })
            if *name == wasmpool_abi::task_export_name(&task_name(RECORDS - 1))),
        "{error}"
    );
}
