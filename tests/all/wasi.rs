//! WASI: a `wasm32-wasip1` module using Rust `std` runs with nothing
//! granted but what the pool grants, its output is captured per task, its
//! random numbers are the task's seeded stream, and a clock it is refused
//! is named in its error.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmpool::{
    Capability, Error, FailureKind, LimitExceeded, OutputSink, Pool, PoolBuilder, TaskFailure, TaskOutput, WasiConfig,
    WorkerKind,
};

/// A pool of the WASI module, its printed output dropped unless a test
/// asks for it.
fn wasi_pool(kind: WorkerKind, wasi: WasiConfig) -> PoolBuilder {
    Pool::builder()
        .module_file(guest_tasks::WASI_WASM_PATH)
        .workers(2)
        .worker_kind(kind)
        .wasi(wasi)
        .output_sink(OutputSink::Discard)
}

/// Run by `by_default_printed_output_goes_to_stderr_marked` in a child
/// process, whose stderr it reads.
#[test]
#[ignore = "run by by_default_printed_output_goes_to_stderr_marked"]
fn child_prints_with_the_default_sink() {
    let pool = Pool::builder().module_file(guest_tasks::WASI_WASM_PATH).workers(2).build().unwrap();
    let names = ["Bo", "Cy\u{1b}[2J"].map(String::from);
    assert_eq!(pool.map::<_, u32>("greet", names).unwrap().len(), 2);
}

#[test]
fn by_default_printed_output_goes_to_stderr_marked() {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &common::this_binarys_test(module_path!(), "child_prints_with_the_default_sink")])
        .args(["--ignored", "--test-threads=1"])
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", String::from_utf8_lossy(&child.stderr));
    let stderr = String::from_utf8_lossy(&child.stderr);
    // `map` shows each task's lines together, as the task finishes.
    for expected in [
        "[greet #0] hello, Bo!\n[greet #0 stderr] greeted Bo\n",
        "[greet #1] hello, Cy\\u{1b}[2J!\n[greet #1 stderr] greeted Cy\\u{1b}[2J\n",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
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
        // Plain calls work too; their output goes to the pool's sink.
        assert_eq!(pool.call::<_, u32>("greet", "Fay".to_string()).unwrap(), 11);
        // The pure tasks of the module run in WASI pools as anywhere.
        assert_eq!(pool.call::<_, f64>("sqrt", 81.0).unwrap(), 9.0);
    }
}

each_kind! {
    fn a_wasi_module_runs_without_being_granted_anything(kind) {
        let pool = Pool::builder()
            .module_file(guest_tasks::WASI_WASM_PATH)
            .workers(2)
            .worker_kind(kind)
            .output_sink(OutputSink::Discard)
            .build()
            .unwrap();
        assert_eq!(pool.call::<_, u32>("greet", "Ada".to_string()).unwrap(), 11);
        assert_eq!(pool.call::<_, Option<String>>("env_var", "HOME".to_string()).unwrap(), None);
        let clock = common::failure(pool.call::<_, u64>("unix_time", ()));
        assert!(matches!(clock, TaskFailure::NotGranted { capability: Capability::WallClock, .. }), "{kind:?}: {clock}");
    }
}

each_kind! {
    fn nothing_is_granted_by_default(kind) {
        let pool = wasi_pool(kind, WasiConfig::new()).build().unwrap();
        assert_eq!(pool.call::<_, Option<String>>("env_var", "HOME".to_string()).unwrap(), None);
        let denied = pool.call::<_, String>("read_file", "/etc/passwd".to_string()).unwrap_err();
        assert!(matches!(common::task_error(denied).failure, TaskFailure::Failed(_)));
        // A refused clock is named, with how to grant it, and the panic it
        // caused in `std` is kept.
        let error = common::task_error(pool.call::<_, u64>("unix_time", ()).unwrap_err());
        let text = error.to_string();
        assert_eq!(error.failure.kind(), FailureKind::NotGranted);
        assert!(text.contains("the wall clock") && text.contains("WasiConfig::wall_clock"), "{text}");
        match &error.failure {
            TaskFailure::NotGranted { capability: Capability::WallClock, failure } => {
                assert!(matches!(**failure, TaskFailure::Panic { .. }), "{failure}");
            }
            other => panic!("{kind:?}: {other}"),
        }
        let instant = common::failure(pool.call::<_, u64>("elapsed_ms", 10u64));
        assert!(matches!(instant, TaskFailure::NotGranted { capability: Capability::MonotonicClock, .. }), "{instant}");
        let nap = common::failure(pool.call::<_, u64>("nap", 1u64));
        assert!(matches!(nap, TaskFailure::NotGranted { capability: Capability::Sleep, .. }), "{nap}");
        // The refusal is the task's alone: the next task runs as if none happened.
        assert_eq!(pool.call::<_, f64>("sqrt", 4.0).unwrap(), 2.0);
    }
}

each_kind! {
    fn a_granted_clock_measures_and_a_granted_sleep_sleeps(kind) {
        let pool = wasi_pool(kind, WasiConfig::new().monotonic_clock()).build().unwrap();
        assert!(pool.call::<_, u64>("elapsed_ms", 1000u64).unwrap() < 60_000);
        let started = Instant::now();
        let slept = pool.task("nap").unwrap().call_captured::<_, u64>(50u64).unwrap();
        assert_eq!(slept.result.unwrap(), 50);
        assert_eq!(slept.output.stdout_text(), "slept 50 ms\n");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}

each_kind! {
    fn a_granted_sleep_still_ends_at_the_deadline(kind) {
        let pool =
            wasi_pool(kind, WasiConfig::new().monotonic_clock()).deadline(Duration::from_millis(300)).build().unwrap();
        let started = Instant::now();
        let long = common::failure(pool.call::<_, u64>("nap", 3_600_000u64));
        assert!(matches!(long, TaskFailure::Limit(LimitExceeded::Deadline { .. })), "{kind:?}: {long}");
        assert!(started.elapsed() < Duration::from_secs(20), "{kind:?}: {:?}", started.elapsed());
        assert_eq!(pool.call::<_, u64>("nap", 1u64).unwrap(), 1);
    }
}

#[test]
fn a_granted_sleep_ends_when_its_task_is_cancelled() {
    let pool = wasi_pool(WorkerKind::Threads, WasiConfig::new().monotonic_clock())
        .workers(1)
        .interruptible(true)
        .output_sink(OutputSink::Discard)
        .build()
        .unwrap();
    let handle = pool.submit::<_, u64>("nap", 3_600_000u64).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    handle.cancel();
    // The only worker is free again soon, not in an hour.
    assert_eq!(pool.call::<_, u64>("nap", 1u64).unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

each_kind! {
    fn uncaptured_output_goes_to_the_sink_marked_with_task_and_index(kind) {
        type Seen = Arc<Mutex<Vec<(String, usize, String)>>>;
        let seen = Seen::default();
        let log = seen.clone();
        let sink = OutputSink::call(move |task, index, output: &TaskOutput| {
            log.lock().unwrap().push((task.to_owned(), index, output.marked_lines(&format!("{task} #{index}"))));
        });
        let pool = wasi_pool(kind, WasiConfig::new()).output_sink(sink).build().unwrap();
        let names = ["Bo", "Cy", "Di"].map(String::from);
        let lengths: Vec<Result<u32, _>> = pool.task("greet").unwrap().chunk_size(1).map_each(names.clone()).unwrap();
        assert!(lengths.iter().all(|r| r.as_ref().is_ok_and(|&n| n == 10)));
        // In input order, whatever the worker that ran them.
        let printed = std::mem::take(&mut *seen.lock().unwrap());
        let expected: Vec<(String, usize, String)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let marked = format!("[greet #{i}] hello, {name}!\n[greet #{i} stderr] greeted {name}\n");
                ("greet".to_owned(), i, marked)
            })
            .collect();
        assert_eq!(printed, expected, "{kind:?}");
        // `map` delivers them as they finish.
        let _: Vec<u32> = pool.map("greet", names.clone()).unwrap();
        let mut printed = std::mem::take(&mut *seen.lock().unwrap());
        printed.sort();
        assert_eq!(printed, expected, "{kind:?}");
        // A single call and a submitted task reach it too; a captured call
        // keeps its output for itself; silent tasks send nothing.
        pool.call::<_, u32>("greet", "Ed".to_string()).unwrap();
        pool.submit::<_, u32>("greet", "Fay".to_string()).unwrap().wait().unwrap();
        pool.task("greet").unwrap().call_captured::<_, u32>("Gus".to_string()).unwrap();
        pool.call::<_, f64>("sqrt", 4.0).unwrap();
        let printed = seen.lock().unwrap();
        let texts: Vec<&str> = printed.iter().map(|(_, _, text)| text.as_str()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains("hello, Ed!") && texts[1].contains("hello, Fay!"), "{texts:?}");
    }
}

each_kind! {
    fn every_getrandom_version_draws_the_tasks_seeded_stream_on_either_target(kind) {
        let pool = |workers, seed| wasi_pool(kind, WasiConfig::new()).workers(workers).seed(seed).build().unwrap();
        let (one, two) = (pool(1, 11), pool(2, 11));
        let versions: Vec<Vec<[u8; 16]>> = one.map("getrandom_bytes", vec![(); 4]).unwrap();
        assert_eq!(two.map::<_, Vec<[u8; 16]>>("getrandom_bytes", vec![(); 4]).unwrap(), versions, "{kind:?}");
        // 0.2, 0.3 and 0.4 read the task's WASI stream in turn: ChaCha8
        // keyed with the task's seed, on stream 2^64 - 1 (docs/semantics.md).
        for (index, parts) in versions.iter().enumerate() {
            use chacha20::ChaCha8Rng;
            use rand_core::{Rng, SeedableRng};
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&wasmpool::task_seed(11, "getrandom_bytes", index as u64).to_le_bytes());
            let mut stream = ChaCha8Rng::from_seed(key);
            stream.set_stream(u64::MAX);
            let mut expected = [0u8; 48];
            stream.fill_bytes(&mut expected);
            assert_eq!(parts.concat(), expected, "{kind:?}: task {index}");
        }
        assert_ne!(versions[0], versions[1], "two tasks drew the same bytes");
        // The same crate built for wasm32-unknown-unknown draws the same
        // bytes, from the SDK's custom source.
        let unknown = Pool::builder().module_file(guest_tasks::WASM_PATH).worker_kind(kind).seed(11).build().unwrap();
        assert_eq!(unknown.map::<_, Vec<[u8; 16]>>("getrandom_bytes", vec![(); 4]).unwrap(), versions, "{kind:?}");
        assert_ne!(pool(1, 12).map::<_, Vec<[u8; 16]>>("getrandom_bytes", vec![(); 4]).unwrap(), versions);
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

/// A FIFO at `path` (Unix), as another program sharing a granted folder
/// could leave one there.
#[cfg(unix)]
fn make_fifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

#[cfg(unix)]
each_kind! {
    fn a_fifo_in_a_granted_folder_is_refused_not_waited_on(kind) {
        // Opening a FIFO waits for its other end, in host code where no
        // deadline reaches: the pool refuses whatever is not a regular file
        // or a folder, on the descriptor it opened.
        let dir = tempfile::tempdir().unwrap();
        make_fifo(&dir.path().join("pipe"));
        let pool = wasi_pool(kind, WasiConfig::new().writable_dir(dir.path(), "out"))
            .deadline(common::scaled(Duration::from_secs(2)))
            .build()
            .unwrap();
        let start = Instant::now();
        let read = pool.call::<_, String>("read_file", "out/pipe".to_string());
        let write = pool.call::<_, ()>("write_file", ("out/pipe".to_string(), "x".to_string()));
        assert!(start.elapsed() < common::scaled(Duration::from_secs(2)), "{kind:?}: waited {:?}", start.elapsed());
        for (what, result) in [("read", read.map(|_| ())), ("write", write)] {
            match common::failure(result) {
                TaskFailure::Failed(message) => {
                    // Reading: refused as no regular file; writing: no reader
                    // (ENXIO, which WASI reports as an I/O error).
                    assert!(message.starts_with("out/pipe: "), "{kind:?} {what}: {message}")
                }
                other => panic!("{kind:?} {what}: {other}"),
            }
        }
        // Regular files still open as before.
        pool.call::<_, ()>("write_file", ("out/plain.txt".to_string(), "42".to_string())).unwrap();
        assert_eq!(pool.call::<_, String>("read_file", "out/plain.txt".to_string()).unwrap(), "42");
    }
}

each_kind! {
    fn a_task_holds_at_most_a_few_hundred_handles(kind) {
        // Each open file is a descriptor of the host's process, shared by
        // thread workers: a task opening files without end ran the host out.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let pool = wasi_pool(kind, WasiConfig::new().read_only_dir(dir.path(), "in")).build().unwrap();
        let held = pool.call::<_, u32>("hold_open", ("in/f".to_string(), 100_000u32));
        assert_eq!(
            common::failure(held),
            TaskFailure::Limit(LimitExceeded::Handles { limit: 256 }),
            "{kind:?}"
        );
        assert_eq!(pool.call::<_, String>("read_file", "in/f".to_string()).unwrap(), "x", "{kind:?}");
    }
}

each_kind! {
    fn a_drive_letter_inside_a_path_does_not_leave_the_granted_folder(kind) {
        // On Windows, `a/Z:name` used to pass the sandbox's checks as a
        // folder and a plain name, and then be opened by Windows as a path
        // on drive Z (the Unix root under Wine): GHSA-f2pq-268w-886c,
        // patched in vendor/wasmtime-wasi. Elsewhere `Z:name` is a plain name.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let name = format!("wasmpool-drive-escape-{}.txt", std::process::id());
        let pool = wasi_pool(kind, WasiConfig::new().writable_dir(dir.path(), "out")).build().unwrap();
        let written = pool.call::<_, ()>("write_file", (format!("out/a/Z:{name}"), "x".to_string()));
        let escaped = std::env::current_dir().unwrap().join(&name);
        let landed_outside = escaped.exists();
        let _ = std::fs::remove_file(&escaped);
        assert!(!landed_outside, "{kind:?}: the task wrote {} outside its folder", escaped.display());
        if cfg!(windows) {
            assert!(matches!(common::failure(written), TaskFailure::Failed(_)), "{kind:?}");
        } else {
            written.unwrap();
            assert!(dir.path().join("a").join(format!("Z:{name}")).exists(), "{kind:?}");
        }
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
