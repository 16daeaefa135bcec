//! Opt-in WASI: a `wasm32-wasip1` module using Rust `std` runs with nothing
//! granted but what the pool grants, and its output is captured per task.

use crate::common;

use wasmpool::{Error, LimitExceeded, ModuleError, Pool, PoolBuilder, TaskFailure, WasiConfig, WorkerKind};

fn wasi_pool(kind: WorkerKind, wasi: WasiConfig) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASI_WASM_PATH).workers(2).worker_kind(kind).wasi(wasi)
}

each_kind! {
    fn println_output_is_captured_per_task_and_kept_from_the_host(kind) {
        let pool = wasi_pool(kind, WasiConfig::new()).build().unwrap();
        let greeting = pool.task("greet").unwrap().call_captured::<_, u32>("Ada".to_string()).unwrap();
        assert_eq!(greeting.result.unwrap(), 11);
        assert_eq!(greeting.output.stdout_text(), "hello, Ada!\n", "{kind:?}");
        assert_eq!(greeting.output.stderr_text(), "greeted Ada\n");
        // Each task's output is its own, in a map too.
        let names = ["Bo", "Cy", "Di", "Ed"].map(String::from);
        let all = pool.task("greet").unwrap().chunk_size(1).map_captured::<_, u32>(names.clone()).unwrap();
        for (name, captured) in names.iter().zip(&all) {
            assert_eq!(captured.output.stdout_text(), format!("hello, {name}!\n"));
        }
        // Plain calls work too; their output is dropped.
        assert_eq!(pool.call::<_, u32>("greet", "Fay".to_string()).unwrap(), 11);
        // The pure tasks of the module run in WASI pools as anywhere.
        assert_eq!(pool.call::<_, f64>("sqrt", 81.0).unwrap(), 9.0);
    }
}

#[test]
fn a_wasi_module_is_refused_without_wasi_naming_an_import() {
    let e = Pool::builder().module_file(guest_tasks::WASI_WASM_PATH).build().unwrap_err();
    match e {
        Error::InvalidModule { cause: ModuleError::ForbiddenImport { module, name }, .. } => {
            assert_eq!(module, "wasi_snapshot_preview1");
            assert!(!name.is_empty());
        }
        other => panic!("unexpected: {other}"),
    }
}

each_kind! {
    fn nothing_is_granted_by_default(kind) {
        let pool = wasi_pool(kind, WasiConfig::new()).build().unwrap();
        assert_eq!(pool.call::<_, Option<String>>("env_var", "HOME".to_string()).unwrap(), None);
        let denied = pool.call::<_, String>("read_file", "/etc/passwd".to_string()).unwrap_err();
        assert!(matches!(common::task_error(denied).failure, TaskFailure::Failed(_)));
        let clock = common::failure(pool.call::<_, u64>("unix_time", ()));
        assert!(
            matches!(&clock, TaskFailure::Panic { message, .. } if message.contains("Capabilities insufficient")),
            "{clock}"
        );
    }
}

each_kind! {
    fn grants_are_given_one_by_one(kind) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.txt"), "data for the task").unwrap();
        let config = WasiConfig::new().env("GREETING", "hi").wall_clock().read_only_dir(dir.path(), "data");
        let pool = wasi_pool(kind, config).build().unwrap();
        assert_eq!(pool.call::<_, Option<String>>("env_var", "GREETING".to_string()).unwrap().as_deref(), Some("hi"));
        assert_eq!(pool.call::<_, Option<String>>("env_var", "HOME".to_string()).unwrap(), None);
        assert!(pool.call::<_, u64>("unix_time", ()).unwrap() > 1_700_000_000);
        let text: String = pool.call("read_file", "data/input.txt".to_string()).unwrap();
        assert_eq!(text, "data for the task");
        // Read-only means read-only.
        let write = pool.call::<_, ()>("write_file", ("data/out.txt".to_string(), "x".to_string()));
        assert!(matches!(common::failure(write), TaskFailure::Failed(_)), "{kind:?}");
        assert!(!dir.path().join("out.txt").exists());
        let writable = wasi_pool(kind, WasiConfig::new().writable_dir(dir.path(), "out")).build().unwrap();
        writable.call::<_, ()>("write_file", ("out/result.txt".to_string(), "42".to_string())).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("result.txt")).unwrap(), "42");
    }
}

each_kind! {
    fn a_task_flooding_stdout_is_stopped_at_the_output_cap(kind) {
        let pool = wasi_pool(kind, WasiConfig::new()).max_output(64 << 10).build().unwrap();
        let flood = pool.task("shout").unwrap().call_captured::<_, ()>((10_000u32, 100u32)).unwrap();
        let failure = flood.result.unwrap_err().failure;
        assert!(
            matches!(&failure, TaskFailure::Limit(LimitExceeded::Output { what, limit, .. })
                if what == "stdout" && *limit == 64 << 10),
            "{kind:?}: {failure}"
        );
        assert!(flood.output.stdout.len() <= 64 << 10);
        assert!(pool.call::<_, ()>("shout", (10u32, 100u32)).is_ok());
    }
}

#[test]
fn a_missing_granted_folder_is_a_configuration_error() {
    let e = wasi_pool(WorkerKind::Threads, WasiConfig::new().read_only_dir("/no/such/folder", "data")).build();
    assert!(matches!(e.unwrap_err(), Error::Config(why) if why.contains("/no/such/folder")));
}

each_kind! {
    fn random_get_is_the_tasks_seeded_stream(kind) {
        let draw = |seed: u64| -> Vec<u64> {
            let pool = wasi_pool(kind, WasiConfig::new()).seed(seed).build().unwrap();
            pool.map("wasi_random", vec![(); 6]).unwrap()
        };
        let first = draw(7);
        assert_eq!(draw(7), first, "{kind:?}: the same seed drew different numbers");
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), first.len(), "{kind:?}: two tasks drew the same numbers: {first:?}");
        assert!(draw(8).iter().zip(&first).all(|(a, b)| a != b), "{kind:?}: seeds 7 and 8 drew the same numbers");
    }
}
