//! Worker processes: the same results as threads, and a pool that survives
//! its workers dying.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
#[cfg(unix)]
use std::process::Stdio;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;
use wasmpool::{Error, InstanceMode, Pool, PoolBuilder, ProcessConfig, TaskFailure, WorkerKind};

fn processes(workers: usize) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(workers).worker_kind(WorkerKind::Processes)
}

/// Runs a fixed set of maps and returns every result, postcard-encoded.
fn result_bytes(pool: &Pool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |bytes: Vec<u8>| out.push(bytes);
    let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..40u32).map(|y| (y, 80u32, 40u32, 100u32))).unwrap();
    push(postcard::to_allocvec(&rows).unwrap());
    let hits: Vec<u64> = pool.map("pi_hits", (0..30u64).map(|s| (5000u64, s))).unwrap();
    push(postcard::to_allocvec(&hits).unwrap());
    let osc: Vec<(f64, f64)> = pool.map("oscillator", (1..20u32).map(|n| (n * 100, 0.01f64))).unwrap();
    push(postcard::to_allocvec(&osc).unwrap());
    let freq: BTreeMap<String, u32> = pool.call("word_frequencies", "a b a c b a").unwrap();
    push(postcard::to_allocvec(&freq).unwrap());
    let each = pool.map_each::<_, i64>("divide", [(9i64, 3i64), (1, 0), (-8, 2)]).unwrap();
    push(format!("{each:?}").into_bytes());
    out
}

#[test]
fn processes_and_threads_give_the_same_bytes() {
    let threads = common::demo_pool(2);
    let procs = processes(2).build().unwrap();
    assert_eq!(procs.worker_kind(), WorkerKind::Processes);
    assert_eq!(procs.worker_pids().iter().flatten().count(), 2);
    assert_eq!(result_bytes(&procs), result_bytes(&threads));
}

#[test]
fn every_call_works_in_process_mode() {
    let pool = processes(2).build().unwrap();
    assert_eq!(pool.call::<_, i64>("add", (2i64, 3i64)).unwrap(), 5);
    assert_eq!(pool.submit::<_, f64>("sqrt", 9.0f64).unwrap().wait().unwrap(), 3.0);
    let unordered: usize = pool.imap_unordered::<_, f64>("sqrt", (0..100).map(f64::from)).unwrap().count();
    assert_eq!(unordered, 100);
    let on_each: Vec<u32> = pool.broadcast("defined_last", 1u32).unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(on_each, vec![2, 2]);
    match common::failure(pool.call::<_, ()>("trap", 1u32)) {
        TaskFailure::Trap { frames, .. } => assert!(frames.iter().any(|f| f.contains("trap_deeper"))),
        other => panic!("expected a trap, got {other}"),
    }
}

#[test]
fn per_worker_state_lives_in_the_worker_process() {
    let pool = processes(1).instance_mode(InstanceMode::PerWorker).init_task("counter_set", 10u64).build().unwrap();
    let counts: Vec<u64> = pool.task("counter_next").unwrap().chunk_size(1).map(vec![(); 3]).unwrap();
    assert_eq!(counts, vec![11, 12, 13]);
}

#[cfg(unix)]
fn kill_9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    Command::new("kill").args(["-0", &pid.to_string()]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
#[cfg(unix)] // kills worker processes with `kill -9`
fn killing_workers_mid_map_loses_and_repeats_nothing() {
    let pool = processes(2).processes(ProcessConfig::new().max_retries(10)).build().unwrap();
    let n = 10_000u64;
    let mut kills = 0;
    let mut seen: BTreeMap<usize, u64> = BTreeMap::new();
    let inputs = (0..n).map(|i| (2_000u64, i));
    for (index, result) in pool.task("pi_hits").unwrap().chunk_size(8).imap_unordered::<_, u64>(inputs).unwrap() {
        let hits = result.unwrap_or_else(|e| panic!("input {index} failed: {e}"));
        assert!(seen.insert(index, hits).is_none(), "input {index} arrived twice");
        // Kill both workers with SIGKILL at several points of the map, while
        // other chunks are queued and running.
        if [500, 2_000, 4_000, 6_000, 8_000].contains(&seen.len()) {
            for pid in pool.worker_pids().into_iter().flatten() {
                kill_9(pid);
                kills += 1;
            }
        }
    }
    assert!(kills >= 8, "the test should have killed workers mid-map (killed {kills})");
    assert_eq!(seen.len(), n as usize, "every input arrives exactly once");
    for (index, hits) in seen {
        assert_eq!(hits, guest_tasks::monte_carlo::pi_hits(2_000, index as u64), "input {index}");
    }
}

/// A module whose task `bad` returns a result header outside memory (an ABI
/// violation, after which a worker process stops itself), and whose task
/// `ok` returns `()` properly.
fn abi_breaking_module() -> Vec<u8> {
    let record = |name: &str| -> String {
        let descriptor = wasmpool_abi::TaskDescriptor {
            version: wasmpool_abi::DESCRIPTOR_VERSION,
            name: name.into(),
            params: vec![],
            result: "()".into(),
            doc: String::new(),
        };
        descriptor.encode().iter().map(|b| format!("\\{b:02x}")).collect()
    };
    let wat = format!(
        r#"(module
            (memory (export "memory") 1)
            (func (export "wasmpool_abi_version") (result i32) i32.const 1)
            (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 64)
            ;; header at 0: status 0, payload at 16, length 0
            (data (i32.const 0) "\00\00\00\00\10\00\00\00\00\00\00\00")
            (func (export "wasmpool_task_ok") (param i32 i32) (result i32) i32.const 0)
            (func (export "wasmpool_task_bad") (param i32 i32) (result i32) i32.const 0xfffffff0)
            (@custom "wasmpool.tasks" "{}")
            (@custom "wasmpool.tasks" "{}"))"#,
        record("ok"),
        record("bad")
    );
    wat::parse_str(wat).unwrap()
}

#[test]
fn a_task_that_kills_its_worker_every_time_fails_alone() {
    let module = abi_breaking_module();
    // In a thread pool the violation is an ordinary typed error.
    let threads = Pool::builder().module_bytes(module.clone()).workers(1).build().unwrap();
    assert!(matches!(common::failure(threads.call::<_, ()>("bad", ())), TaskFailure::Abi(_)));

    let pool =
        Pool::builder().module_bytes(module).workers(2).processes(ProcessConfig::new().max_retries(2)).build().unwrap();
    let tasks = ["ok", "bad", "ok", "ok", "ok"];
    let results: Vec<_> =
        tasks.iter().map(|task| pool.submit::<_, ()>(task, ()).unwrap()).map(|handle| handle.wait()).collect();
    for (i, (task, result)) in tasks.iter().zip(&results).enumerate() {
        match (*task, result) {
            ("ok", Ok(())) => {}
            ("bad", Err(e)) => match &e.failure {
                TaskFailure::WorkerCrashed { attempts, status, cause, .. } => {
                    assert_eq!(e.task, "bad");
                    assert_eq!(*attempts, 3, "the first try and 2 retries");
                    assert!(status.contains('3'), "exit status 3: {status}");
                    assert!(cause.contains("broke the wasmpool ABI"), "{cause}");
                }
                other => panic!("expected WorkerCrashed, got {other}"),
            },
            (task, other) => panic!("task #{i} `{task}`: unexpected {other:?}"),
        }
    }
    // The pool is still whole: the worker that gave up has a new process.
    assert_eq!(pool.worker_pids().iter().flatten().count(), 2);
    pool.call::<_, ()>("ok", ()).unwrap();
    // The statistics count the 2 retries, and every task run once.
    let stats = pool.stats();
    assert_eq!(stats.retries(), 2, "{stats:?}");
    assert_eq!(stats.tasks(), 6, "{stats:?}");
}

#[test]
#[cfg(unix)] // looks for the worker processes in /proc
fn dropping_the_pool_leaves_no_worker_process() {
    let pool = processes(2).build().unwrap();
    let pids: Vec<u32> = pool.worker_pids().into_iter().flatten().collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&pid| process_exists(pid)));
    // The ids are the operating system's for this process's children, not
    // whatever a worker (which has run guest code) says.
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let parent = status.lines().find_map(|line| line.strip_prefix("PPid:")).unwrap().trim();
        assert_eq!(parent, std::process::id().to_string(), "worker {pid}");
    }
    // Queue slow tasks, then drop: no waiting for them, and no survivors.
    let handles: Vec<_> = (0..6u64).map(|s| pool.submit::<_, u64>("pi_hits", (50_000_000u64, s)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    drop(pool);
    assert!(started.elapsed() < Duration::from_secs(5), "drop kills workers instead of waiting");
    for handle in handles {
        assert_eq!(handle.wait().unwrap_err().failure, TaskFailure::PoolClosed);
    }
    assert!(pids.iter().all(|&pid| !process_exists(pid)), "worker processes survived the pool");
}

/// Run by `a_killed_host_leaves_no_worker_process` as the host to kill.
#[test]
#[ignore = "run as a child process by a_killed_host_leaves_no_worker_process"]
fn child_host_with_worker_processes() {
    let pool = processes(2).build().unwrap();
    let pids: Vec<String> = pool.worker_pids().into_iter().flatten().map(|p| p.to_string()).collect();
    println!("PIDS {}", pids.join(" "));
    // Give the workers something long to do, then wait to be killed.
    let _handles: Vec<_> = (0..2u64).map(|s| pool.submit::<_, u64>("pi_hits", (u64::MAX, s)).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
#[cfg(unix)] // looks for the worker processes in /proc
fn a_killed_host_leaves_no_worker_process() {
    use std::io::{BufRead, BufReader};
    let me = std::env::current_exe().unwrap();
    let mut host = Command::new(me)
        .args(["--exact", &common::this_binarys_test(module_path!(), "child_host_with_worker_processes")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = host.stdout.take().unwrap();
    let pids: Vec<u32> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints "test name ... " without a newline before our line.
        .find_map(|line| line.split_once("PIDS ").map(|(_, p)| p.split(' ').map(|x| x.parse().unwrap()).collect()))
        .expect("the child host reports its workers");
    assert_eq!(pids.len(), 2);
    std::thread::sleep(Duration::from_millis(200));
    host.kill().unwrap(); // SIGKILL: no destructor runs in the host.
    host.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| process_exists(pid) && !is_zombie(pid)) {
        assert!(Instant::now() < deadline, "worker processes outlived their killed host: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that has exited but whose parent (here: the killed host, now
/// reparented to init) has not reaped it yet counts as gone.
#[cfg(unix)]
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn a_missing_worker_executable_says_what_to_do() {
    let err =
        processes(1).processes(ProcessConfig::new().executable("/nonexistent/wasmpool-worker")).build().unwrap_err();
    assert!(matches!(err, Error::WorkerNotFound { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/wasmpool-worker"), "{message}");
    assert!(message.contains("cargo build --bin wasmpool-worker"), "{message}");
}

#[test]
#[cfg(unix)] // uses /bin/true as the executable that is not a worker
fn a_worker_executable_that_is_not_one_is_refused_at_build() {
    let err = processes(1).processes(ProcessConfig::new().executable("/bin/true")).build().unwrap_err();
    match err {
        Error::WorkerStart { worker, reason } => {
            assert_eq!(worker, 0);
            assert!(reason.contains("handshake"), "{reason}");
        }
        other => panic!("expected WorkerStart, got {other}"),
    }
}

/// Run by `worker_stderr_reaches_the_host_with_the_worker_id`.
#[test]
#[ignore = "run as a child process by worker_stderr_reaches_the_host_with_the_worker_id"]
fn child_host_whose_worker_writes_to_stderr() {
    let pool = Pool::builder()
        .module_bytes(abi_breaking_module())
        .workers(1)
        .processes(ProcessConfig::new().max_retries(0))
        .build()
        .unwrap();
    assert!(pool.call::<_, ()>("bad", ()).is_err());
}

#[test]
fn worker_stderr_reaches_the_host_with_the_worker_id() {
    // Needs no Unix tool: the child is this very test binary.
    let me = std::env::current_exe().unwrap();
    let output = Command::new(me)
        .args(["--exact", &common::this_binarys_test(module_path!(), "child_host_whose_worker_writes_to_stderr")])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[wasmpool worker 0] stopping: the guest broke the wasmpool ABI"),
        "the worker's stderr line, prefixed with its id, should reach the host's stderr:\n{stderr}"
    );
}

#[test]
fn process_pools_work_with_their_own_cache_folder_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let cached = processes(1).cache_dir(dir.path()).build().unwrap();
    assert_eq!(cached.call::<_, f64>("sqrt", 4.0f64).unwrap(), 2.0);
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "one precompiled module in the cache folder");
    let uncached = processes(1).disable_cache().build().unwrap();
    assert_eq!(uncached.call::<_, f64>("sqrt", 9.0f64).unwrap(), 3.0);
}

#[test]
fn inputs_sent_ahead_keep_their_own_progress_reports() {
    // One worker, one chunk: the inputs after the first are sent to the
    // process along with it, and each starts there before the host has
    // read the result of the one before.
    let pool = processes(1).build().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let task = pool.task("slow_sum").unwrap().chunk_size(6).on_progress(move |index, done, total| {
        sink.lock().unwrap().push((index, done, total));
    });
    let inputs = [100u64, 2000, 300, 4000, 50, 600];
    let sums: Vec<u64> = task.map(inputs).unwrap();
    assert_eq!(sums, inputs.map(|n| n * (n - 1) / 2));
    let seen = seen.lock().unwrap().clone();
    for (index, n) in inputs.into_iter().enumerate() {
        let reports: Vec<(u64, u64)> = seen.iter().filter(|r| r.0 == index).map(|r| (r.1, r.2)).collect();
        assert_eq!(reports.len(), 10, "nine steps and the end, for input {index}: {reports:?}");
        assert!(reports.iter().all(|&(done, total)| done <= n && total == n), "input {index}: {reports:?}");
        assert_eq!(reports.last(), Some(&(n, n)), "input {index}");
    }
}

#[test]
fn a_cancelled_map_leaves_no_stale_result_behind() {
    // Dropping a map mid-chunk stops the input running in the process and
    // those sent ahead of it; whatever they would have answered must not be
    // taken for the answers of the calls that follow.
    let pool = processes(1).build().unwrap();
    for round in 0..5u64 {
        let inputs = (0..64u64).map(|s| (200_000u64, s));
        let mut results = pool.task("pi_hits").unwrap().chunk_size(16).imap::<_, u64>(inputs).unwrap();
        let first = results.next().expect("a first result").unwrap();
        assert_eq!(first, guest_tasks::monte_carlo::pi_hits(200_000, 0), "round {round}");
        drop(results);
        for x in [16.0f64, 81.0, 2.25] {
            assert_eq!(pool.call::<_, f64>("sqrt", x).unwrap(), x.sqrt(), "round {round}");
        }
        let roots: Vec<f64> = pool.task("sqrt").unwrap().chunk_size(4).map([1.0f64, 4.0, 9.0, 16.0, 25.0]).unwrap();
        assert_eq!(roots, [1.0, 2.0, 3.0, 4.0, 5.0], "round {round}");
        let hits: u64 = pool.call("pi_hits", (1000u64, round)).unwrap();
        assert_eq!(hits, guest_tasks::monte_carlo::pi_hits(1000, round), "round {round}");
    }
}

/// Bytes that postcard cannot encode when `broken`: a sequence of unknown
/// length.
struct Bytes {
    data: Vec<u8>,
    broken: bool,
}

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.broken {
            serializer.collect_seq(self.data.iter().filter(|_| true))
        } else {
            self.data.serialize(serializer)
        }
    }
}

#[test]
fn inputs_that_cannot_be_encoded_fail_alone_inside_a_chunk() {
    // The inputs around them are sent ahead to the process and run there,
    // and each result lands at its own index.
    let pool = processes(1).build().unwrap();
    let inputs: Vec<Bytes> = (0..7).map(|i| Bytes { data: vec![7; i * 10], broken: i == 2 || i == 5 }).collect();
    let results: Vec<Result<u64, _>> = pool.task("byte_len").unwrap().chunk_size(7).map_each(&inputs).unwrap();
    for (i, result) in results.iter().enumerate() {
        match result {
            Err(e) if i == 2 || i == 5 => {
                assert_eq!(e.index, i);
                assert!(matches!(e.failure, TaskFailure::EncodeArguments(_)), "input {i}: {e}");
            }
            Ok(len) => assert_eq!(*len, (i * 10) as u64, "input {i}"),
            other => panic!("input {i}: {other:?}"),
        }
    }
}

#[test]
fn an_output_limit_worker_processes_cannot_carry_is_refused_before_compiling() {
    // With WASI a reply may hold a result, stdout and stderr of max_output
    // each: 3 × 2 GiB does not fit in a frame.
    let start = std::time::Instant::now();
    let error = processes(1)
        .max_memory(4 << 30)
        .max_output(2 << 30)
        .wasi(wasmpool::WasiConfig::new())
        .build()
        .expect_err("refused");
    assert!(matches!(error, wasmpool::Error::Config(_)), "{error}");
    assert!(error.to_string().contains("larger than 4 GiB"), "{error}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "refused only after compiling");
    // Thread workers have no frames: the same limits build.
    let threads = Pool::builder()
        .module_file(guest_tasks::WASI_WASM_PATH)
        .workers(1)
        .max_output(2 << 30)
        .wasi(wasmpool::WasiConfig::new())
        .build();
    assert!(threads.is_ok(), "{:?}", threads.err());
    // A WASI module runs with WASI without being asked: found once it is
    // read, the same limits are refused then.
    let unasked = processes(1)
        .module_file(guest_tasks::WASI_WASM_PATH)
        .max_memory(4 << 30)
        .max_output(2 << 30)
        .build()
        .expect_err("refused");
    assert!(unasked.to_string().contains("(a result, stdout and stderr)"), "{unasked}");
}
