//! Cluster mode end to end: `wasmpool run` under `mpirun` (Open MPI), on
//! one machine with `--oversubscribe`, against `wasmpool run` alone.
//! Built only with the `mpi` feature (`cargo test -p wasmpool-cli
//! --features mpi --test cluster -- --test-threads 1`, as `.ci/cluster`
//! runs it). Without `mpirun` on the PATH each test says it is skipped,
//! unless WASMPOOL_REQUIRE_MPI is set (CI), where that is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MODULE: &str = guest_tasks::WASM_PATH;
/// Lines of the jobs that are interrupted (killed, stopped ranks): enough
/// that the job is still running when the signal arrives.
const LINES: usize = 100_000;
/// Lines of the jobs run whole in every configuration, for their bytes:
/// still hundreds of chunks spread over the ranks, in a quarter of the time.
const COMPARED_LINES: usize = 25_000;

fn have_mpirun(test: &str) -> bool {
    let found = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("WASMPOOL_REQUIRE_MPI").is_none(), "mpirun is not installed, and CI requires it");
        eprintln!("skipped: {test}: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)");
    }
    found
}

fn wasmpool() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmpool"));
    command.env_remove("RUST_LOG");
    command
}

/// `mpirun -np ranks wasmpool …`, allowed to run as root and to put more
/// ranks than cores on this machine.
fn mpirun(ranks: usize) -> Command {
    mpirun_with(ranks, &[])
}

/// [`mpirun`] with more of mpirun's own options.
fn mpirun_with(ranks: usize, options: &[&str]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("RUST_LOG")
        // mpirun forwards its stdin to rank 0: none, whatever the test's is.
        .stdin(Stdio::null())
        .args(["--oversubscribe", "-np", &ranks.to_string()])
        .args(options)
        .arg(env!("CARGO_BIN_EXE_wasmpool"));
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Job {
    dir: tempfile::TempDir,
    input: PathBuf,
}

impl Job {
    /// A job of `lines` lines, the `i`-th `task_inputs(i)`.
    fn new(lines: usize, task_inputs: impl Fn(usize) -> String) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let text: String = (0..lines).map(|i| task_inputs(i) + "\n").collect();
        std::fs::write(&input, text).unwrap();
        Job { dir, input }
    }

    /// [`LINES`] random walks.
    fn walks() -> Job {
        Job::walks_of(LINES)
    }

    fn walks_of(lines: usize) -> Job {
        Job::new(lines, |i| format!("{}", 10 + i % 50))
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `run MODULE task -i input -o output --seed 7 …`.
    fn args(&self, command: &mut Command, task: &str, output: &Path, extra: &[&str]) {
        command.args(["run", MODULE, task, "--seed", "7", "-i"]).arg(&self.input).arg("-o").arg(output).args(extra);
    }

    /// The run on this machine alone.
    fn local(&self, task: &str, name: &str, extra: &[&str]) -> Vec<u8> {
        let output = self.out(name);
        let mut command = wasmpool();
        self.args(&mut command, task, &output, extra);
        let out = command.arg("-q").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read(output).unwrap()
    }

    fn cluster(&self, ranks: usize, task: &str, output: &Path, extra: &[&str]) -> Command {
        let mut command = mpirun(ranks);
        self.args(&mut command, task, output, extra);
        command
    }
}

/// The records of an unordered output, sorted by line.
fn sorted(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(bytes).lines().map(str::to_owned).collect();
    // `{"line":N,…`: the number, without parsing all of the JSON.
    let line_number = |line: &String| -> u64 {
        let rest = line.strip_prefix("{\"line\":").unwrap_or_else(|| panic!("not a numbered record: {line}"));
        rest.split(',').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no line number: {line}"))
    };
    lines.sort_by_key(line_number);
    lines
}

#[test]
fn output_is_the_same_bytes_on_1_2_and_3_ranks() {
    if !have_mpirun("output_is_the_same_bytes_on_1_2_and_3_ranks") {
        return;
    }
    // A seeded task and a float-heavy one.
    let cases = [
        ("random_walk", Job::walks_of(COMPARED_LINES)),
        ("oscillator", Job::new(COMPARED_LINES, |i| format!("[{}, 0.01]", 100 + i % 200))),
    ];
    // Every rank count in both worker kinds and both orders, for both
    // tasks: thread workers in input order, worker processes unordered,
    // and on 3 ranks the other two pairs too.
    for (task, job) in &cases {
        for unordered in [false, true] {
            let order: &[&str] = if unordered { &["--unordered"] } else { &[] };
            let local = job.local(task, "local.jsonl", order);
            for ranks in 1..=3 {
                for processes in [false, true] {
                    if processes != unordered && ranks < 3 {
                        continue;
                    }
                    let mut extra = order.to_vec();
                    if processes {
                        extra.push("--processes");
                    }
                    let output = job.out(&format!("{task}-{ranks}-{processes}-{unordered}.jsonl"));
                    let started = Instant::now();
                    let out = job.cluster(ranks, task, &output, &extra).output().unwrap();
                    let case = format!("{task}, {ranks} rank(s), processes {processes}, unordered {unordered}");
                    assert!(out.status.success(), "{case}: {}", stderr(&out));
                    let summary = stderr(&out);
                    if ranks > 1 {
                        assert!(summary.contains(&format!("{ranks} ranks:")), "{case}: {summary}");
                    }
                    let bytes = std::fs::read(&output).unwrap();
                    if unordered {
                        assert!(sorted(&bytes) == sorted(&local), "{case}: other records than on one machine");
                    } else {
                        assert!(bytes == local, "{case}: other bytes than on one machine");
                    }
                    eprintln!("{case}: {COMPARED_LINES} lines equal in {:.1} s", started.elapsed().as_secs_f64());
                }
            }
        }
    }
}

/// This test's processes of `rank`: the rank itself (a command line with
/// `marker`) and, with `workers`, its worker processes.
fn pids_of_rank(rank: usize, marker: &Path, workers: bool) -> Vec<u32> {
    let marker = marker.to_string_lossy().into_owned();
    let mut ranks = Vec::new();
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        if !environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .replace('\0', " ");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent = stat.rsplit(") ").next().and_then(|rest| rest.split(' ').nth(1)).and_then(|p| p.parse().ok());
        all.push((pid, parent.unwrap_or(0u32), cmdline.clone()));
        if cmdline.contains(&marker) {
            ranks.push(pid);
        }
    }
    if !workers {
        return ranks;
    }
    all.into_iter()
        .filter(|(_, parent, cmd)| ranks.contains(parent) && cmd.contains(" worker"))
        .map(|(p, ..)| p)
        .collect()
}

/// Waits until `output` holds at least `bytes` while `child` (an mpirun)
/// runs. If mpirun ends first, or nothing comes for 2 minutes, the test
/// fails with mpirun's status and stderr (its pipe, or the file `log`), so
/// that a failure in CI shows why.
fn wait_for_output(output: &Path, bytes: u64, child: &mut Child, log: Option<&Path>) {
    let started = Instant::now();
    while std::fs::metadata(output).map_or(0, |m| m.len()) < bytes {
        let why = match child.try_wait() {
            Ok(Some(status)) => format!("mpirun ended ({status}) before {bytes} bytes of output"),
            _ if started.elapsed() > Duration::from_secs(120) => "no output in 2 minutes; mpirun killed".to_owned(),
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let mut text = log.map(|log| std::fs::read_to_string(log).unwrap_or_default()).unwrap_or_default();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        }
        let written = std::fs::metadata(output).map_or(0, |m| m.len());
        panic!("{why}; {written} bytes written; its stderr:\n{text}");
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Runs the job on 3 ranks, sends `sig` to `rank` once some results are
/// out, and returns mpirun's exit status and stderr, and how long the job
/// took to end after the signal.
fn interrupt(job: &Job, output: &Path, extra: &[&str], rank: usize, sig: &str) -> (Option<i32>, String, Duration) {
    let mut child = job
        .cluster(3, "random_walk", output, extra)
        .arg("-q")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_output(output, 64 << 10, &mut child, None);
    let pids = pids_of_rank(rank, output, false);
    assert_eq!(pids.len(), 1, "rank {rank}'s process: {pids:?}");
    signal(pids[0], sig);
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut text).unwrap();
    if sig == "STOP" {
        // Whatever mpirun left behind must not stay stopped.
        let _ = Command::new("kill").args(["-CONT", &pids[0].to_string()]).status();
    }
    (status.code(), text, took)
}

fn resume(job: &Job, output: &Path, extra: &[&str]) -> String {
    let out = job.cluster(3, "random_walk", output, extra).arg("--resume").output().unwrap();
    assert!(out.status.success(), "resume: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn a_killed_rank_ends_the_job_and_resume_finishes_it() {
    if !have_mpirun("a_killed_rank_ends_the_job_and_resume_finishes_it") {
        return;
    }
    let job = Job::walks();
    let whole = job.local("random_walk", "whole.jsonl", &[]);
    for rank in [1, 0] {
        let output = job.out(&format!("killed-{rank}.jsonl"));
        let (code, text, took) = interrupt(&job, &output, &[], rank, "KILL");
        assert_ne!(code, Some(0), "killing rank {rank} fails the job: {text}");
        assert!(took < Duration::from_secs(15), "the job ended {took:?} after rank {rank} was killed");
        let kept = std::fs::read(&output).unwrap();
        assert!(kept.len() < whole.len(), "rank {rank} was killed before the end");
        // As a kill in the middle of a write leaves it: a torn last line.
        std::fs::OpenOptions::new().append(true).open(&output).unwrap().write_all(b"[-1.5,").unwrap();
        let summary = resume(&job, &output, &[]);
        assert!(summary.contains("done before"), "{summary}");
        assert!(std::fs::read(&output).unwrap() == whole, "after rank {rank} was killed and the job resumed");
    }
}

#[test]
fn a_stopped_rank_is_found_within_the_rank_timeout() {
    if !have_mpirun("a_stopped_rank_is_found_within_the_rank_timeout") {
        return;
    }
    let job = Job::walks();
    let whole = job.local("random_walk", "whole.jsonl", &["--unordered"]);
    let output = job.out("stopped.jsonl");
    let extra = ["--unordered", "--rank-timeout", "3s"];
    let (code, text, took) = interrupt(&job, &output, &extra, 2, "STOP");
    assert_eq!(code, Some(75), "a lost rank ends the job with EX_TEMPFAIL: {text}");
    assert!(text.contains("rank 2 (host") && text.contains("went silent"), "{text}");
    assert!(text.contains("--resume"), "{text}");
    // 3 s of silence, then the journal is synced and MPI_Abort ends the job.
    assert!(took < Duration::from_secs(8), "found {took:?} after the rank was stopped");
    resume(&job, &output, &["--unordered"]);
    assert!(sorted(&std::fs::read(&output).unwrap()) == sorted(&whole), "every line exactly once after the resume");
}

/// Runs the job on 3 ranks with worker processes, sends `sig` to one of
/// rank 1's worker processes once some results are out, and waits for a
/// successful end: the summary, and its line for rank 1.
fn signal_a_worker_of_rank_1(job: &Job, output: &Path, extra: &[&str], sig: &str) -> (String, String) {
    let mut child = job.cluster(3, "random_walk", output, extra).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_output(output, 64 << 10, &mut child, None);
    let workers = pids_of_rank(1, output, true);
    assert!(!workers.is_empty(), "rank 1 has worker processes");
    signal(workers[0], sig);
    let out = child.wait_with_output().unwrap();
    let summary = stderr(&out);
    assert!(out.status.success(), "{summary}");
    let rank1 = summary.lines().find(|l| l.contains("#1 ")).unwrap_or_default().to_owned();
    (summary, rank1)
}

#[test]
fn a_crashed_worker_process_inside_a_rank_is_retried() {
    if !have_mpirun("a_crashed_worker_process_inside_a_rank_is_retried") {
        return;
    }
    let job = Job::walks();
    let whole = job.local("random_walk", "whole.jsonl", &[]);
    let output = job.out("crashed.jsonl");
    let (summary, rank1) = signal_a_worker_of_rank_1(&job, &output, &["--processes"], "KILL");
    assert!(std::fs::read(&output).unwrap() == whole, "a crash inside a rank changes nothing: {summary}");
    assert!(!rank1.contains(" 0 retries"), "rank 1 retried the crashed input: {summary}");
}

#[test]
fn a_deadline_failure_runs_once_more_on_another_rank_then_is_reported() {
    if !have_mpirun("a_deadline_failure_runs_once_more_on_another_rank_then_is_reported") {
        return;
    }
    // Every tenth input never ends: a poison input, not a stalled node.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text: String =
        (0..200).map(|i| if i % 10 == 3 { "18446744073709551615\n".to_owned() } else { format!("{i}\n") }).collect();
    std::fs::write(&input, text).unwrap();
    let args = |command: &mut Command, output: &Path| {
        command
            .args(["run", MODULE, "spin", "--deadline", "300ms", "--on-error", "continue", "-w", "2", "-i"])
            .arg(&input)
            .arg("-o")
            .arg(output);
    };
    let local = dir.path().join("local.jsonl");
    let mut command = wasmpool();
    args(&mut command, &local);
    assert_eq!(command.output().unwrap().status.code(), Some(1));
    let spread = dir.path().join("spread.jsonl");
    let mut command = mpirun(3);
    args(&mut command, &spread);
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        std::fs::read(&spread).unwrap() == std::fs::read(&local).unwrap(),
        "the same error lines as on one machine"
    );
    // Each poison input ran once more elsewhere, and no more: the 20 that
    // rank 0's own workers ran are reported as they are, the others were
    // retried once each.
    let summary = stderr(&out);
    let retried: u64 =
        summary.lines().filter_map(|l| l.split(" retries, ").nth(1)?.split(' ').next()?.parse::<u64>().ok()).sum();
    assert!(retried <= 20, "at most one retry per poison input: {summary}");
    assert!(retried >= 1, "poison inputs on other ranks were retried: {summary}");
}

#[test]
fn a_stopped_worker_process_s_input_runs_again_on_another_rank() {
    if !have_mpirun("a_stopped_worker_process_s_input_runs_again_on_another_rank") {
        return;
    }
    // A stalled node, not a poison input: rank 1's worker process is
    // stopped, its input meets its deadline there, runs again on another
    // rank and succeeds, so the output is that of an undisturbed run.
    let job = Job::walks();
    let extra = ["--processes", "--deadline", "2s", "--on-error", "continue"];
    let whole = job.local("random_walk", "whole.jsonl", &extra);
    let output = job.out("stalled.jsonl");
    let (summary, rank1) = signal_a_worker_of_rank_1(&job, &output, &extra, "STOP");
    assert!(std::fs::read(&output).unwrap() == whole, "the stalled input's result, not its deadline: {summary}");
    assert!(!rank1.ends_with(" 0 deadline retries"), "rank 1's stalled input ran again elsewhere: {summary}");
}

#[test]
fn ranks_need_no_copy_of_the_module_but_must_agree_on_settings() {
    if !have_mpirun("ranks_need_no_copy_of_the_module_but_must_agree_on_settings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "1\n4\n9\n").unwrap();
    let mpmd = |rest: &[&str]| {
        let mut command = mpirun(1);
        command.args(["run", MODULE, "sqrt", "-i"]).arg(&input).args([":", "-np", "2", env!("CARGO_BIN_EXE_wasmpool")]);
        command.args(rest).arg("-i").arg(&input);
        command.output().unwrap()
    };
    // Ranks 1 and 2 are pointed at a module that is not there: rank 0 sends its own.
    let out = mpmd(&["run", "/nowhere/tasks.wasm", "sqrt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.0\n2.0\n3.0\n");
    // Another memory limit would change what fails: refused, by rank and host.
    let out = mpmd(&["run", MODULE, "sqrt", "--max-memory", "32MiB"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("rank 1 (host") && message.contains("other pool settings"), "{message}");
    assert!(message.contains("max_memory: 33554432 against rank 0's max_memory: 268435456"), "{message}");
    // Fuel metering is compiled into the code: another engine, refused as such.
    let out = mpmd(&["run", MODULE, "sqrt", "--fuel", "1000000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("rank 1 (host") && message.contains("compiles code differently"), "{message}");
}

/// The Python that builds tasks written in Python (with componentize-py),
/// from WASMPOOL_PYTHON; `None` (the test skips, saying so) if unset,
/// unless WASMPOOL_REQUIRE_PYTHON_TASKS is set (CI), where that fails.
fn python_for_tasks(test: &str) -> Option<std::ffi::OsString> {
    let python = std::env::var_os("WASMPOOL_PYTHON").filter(|p| !p.is_empty());
    if python.is_none() {
        assert!(
            std::env::var_os("WASMPOOL_REQUIRE_PYTHON_TASKS").is_none(),
            "{test}: WASMPOOL_PYTHON is not set, and CI requires tasks written in Python"
        );
        eprintln!("skipped: {test}: set WASMPOOL_PYTHON to a Python with componentize-py");
    }
    python
}

#[test]
fn tasks_written_in_python_span_the_ranks_and_only_rank_0_builds_them() {
    let test = "tasks_written_in_python_span_the_ranks_and_only_rank_0_builds_them";
    if !have_mpirun(test) {
        return;
    }
    let Some(python) = python_for_tasks(test) else { return };
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/tasks.py");
    // `pi_hits` draws from `random`, seeded per input: any rank, any worker.
    let job = Job::new(300, |i| format!("{}", 500 + i % 7 * 100));
    let module = job.dir.path().join("tasks.py");
    std::fs::copy(&tasks, &module).unwrap();
    let run_args = |output: &Path, extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["run".into(), module.clone().into(), "pi_hits".into(), "--seed".into(), "7".into(), "-i".into()];
        args.extend([job.input.clone().into_os_string(), "-o".into(), output.as_os_str().to_owned(), "-q".into()]);
        args.extend(extra.iter().map(Into::into));
        args
    };
    let local_output = job.out("local.jsonl");
    let local = wasmpool().env("WASMPOOL_PYTHON", &python).args(run_args(&local_output, &[])).output().unwrap();
    assert!(local.status.success(), "{}", stderr(&local));
    let expected = std::fs::read(&local_output).unwrap();
    for extra in [&[][..], &["--processes"][..]] {
        let output = job.out("cluster.jsonl");
        let _ = std::fs::remove_file(&output);
        // Rank 0 builds (from the cache) and sends the component; ranks 1
        // and 2 have no Python to build with, and need none.
        let mut command = Command::new("mpirun");
        command
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("WASMPOOL_PYTHON", &python)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .args(["--oversubscribe", "-np", "1", env!("CARGO_BIN_EXE_wasmpool")])
            .args(run_args(&output, extra))
            .args([":", "-np", "2", "env", "WASMPOOL_PYTHON=/nowhere/python3", env!("CARGO_BIN_EXE_wasmpool")])
            .args(run_args(&output, extra));
        let out = command.output().unwrap();
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(&output).unwrap(), expected, "{extra:?}: the bytes of a run on one machine");
    }
}

/// `mpirun -np ranks wasmpool …` in which ranks misbehave as `faults`
/// asks (`RANK:FAULT,…`, see host/cluster/fault.rs: debug builds of
/// wasmpool only, as the tests' are).
fn faulty(ranks: usize, faults: &str) -> Command {
    let mut command = mpirun_with(ranks, &["-x", "WASMPOOL_TEST_CLUSTER_FAULT"]);
    command.env("WASMPOOL_TEST_CLUSTER_FAULT", faults);
    command
}

/// Runs `command` (an mpirun) with its stderr in the file `log`, for at
/// most `limit`: its exit status and stderr, and how long it ran. Past
/// `limit` it is killed and the test fails, with that stderr.
fn run_within(mut command: Command, log: &Path, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), std::fs::read_to_string(log).unwrap_or_default(), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the job was still running after {limit:?}; its stderr:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job of `lines` square roots.
fn roots(lines: usize) -> Job {
    Job::new(lines, |i| format!("{}", i + 1))
}

/// A job of `lines` inputs of a few milliseconds each (`spin`): rank 0's
/// own worker cannot finish them all before the other ranks get theirs,
/// as it may square roots.
fn spins(lines: usize) -> Job {
    Job::new(lines, |_| "3000000".to_string())
}

#[test]
fn a_rank_answering_set_up_twice_cannot_stand_in_for_a_missing_one() {
    if !have_mpirun("a_rank_answering_set_up_twice_cannot_stand_in_for_a_missing_one") {
        return;
    }
    // Rank 1 answers twice at once, rank 2 two seconds late: counted by
    // message, rank 1's second answer would complete the set-up and rank 2
    // would never be heard. Counted by rank, rank 1 broke the protocol.
    let job = roots(20);
    let output = job.out("twice.jsonl");
    let mut command = faulty(3, "1:answer-twice,2:answer-late");
    job.args(&mut command, "sqrt", &output, &["-q"]);
    let (code, text, _) = run_within(command, &job.out("twice.log"), Duration::from_secs(120));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("rank 1 (host") && text.contains("answered set-up twice"), "{text}");
}

#[test]
fn a_rank_that_answers_but_holds_its_jobs_is_lost_and_resume_finishes_the_job() {
    if !have_mpirun("a_rank_that_answers_but_holds_its_jobs_is_lost_and_resume_finishes_the_job") {
        return;
    }
    // Rank 1 takes its jobs and keeps them, unrun, while its heartbeats
    // say it is alive: never silent, never done. Each job of one input may
    // take 3 × 300 ms + 100 ms, behind the other job the rank holds, and
    // the rank timeout on top: found within seconds, not never.
    let job = spins(200);
    let extra = ["--deadline", "300ms", "--chunk-size", "1", "-w", "1"];
    let whole = job.local("spin", "whole.jsonl", &extra);
    let output = job.out("held.jsonl");
    let mut command = faulty(3, "1:hold");
    job.args(&mut command, "spin", &output, &extra);
    command.args(["--rank-timeout", "3s", "-q"]);
    let (code, text, took) = run_within(command, &job.out("held.log"), Duration::from_secs(60));
    assert_eq!(code, Some(75), "a rank that makes no progress is lost: {text}");
    assert!(text.contains("rank 1 (host") && text.contains("held a job of 1 input(s)"), "{text}");
    assert!(text.contains("--resume"), "{text}");
    assert!(took < Duration::from_secs(30), "found {took:?} after the start");
    let out = job.cluster(3, "spin", &output, &extra).arg("--resume").output().unwrap();
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert!(std::fs::read(&output).unwrap() == whole, "every line exactly once after the resume");
}

/// Runs 200 `spin` inputs of 4 KiB results at most over 3 ranks, rank 1
/// committing `fault` (about what it sends); checks that the job stops
/// with status 75 (a rank lost, the results so far kept for `--resume`)
/// and returns its stderr.
fn lost_for_what_it_sends(fault: &str) -> String {
    let job = spins(200);
    let extra = ["--max-output", "4KiB", "--chunk-size", "1", "-w", "1", "--printed", "discard", "-q"];
    let output = job.out(&format!("{fault}.jsonl"));
    let mut command = faulty(3, &format!("1:{fault}"));
    job.args(&mut command, "spin", &output, &extra);
    let (code, text, _) = run_within(command, &job.out(&format!("{fault}.log")), Duration::from_secs(60));
    assert_eq!(code, Some(75), "{text}");
    text
}

#[test]
fn a_rank_sending_more_than_its_jobs_allow_is_lost_and_its_message_never_read() {
    if !have_mpirun("a_rank_sending_more_than_its_jobs_allow_is_lost_and_its_message_never_read") {
        return;
    }
    // With results of at most 4 KiB, a rank holding two jobs of one input
    // may send about 2 MiB (a failure may take a result's place, and stdout
    // and stderr come with it); rank 1 pads its first results past that,
    // in a message that decodes.
    let text = lost_for_what_it_sends("oversize");
    assert!(text.contains("rank 1 (host") && text.contains("bytes, more than the"), "{text}");
    assert!(text.contains("its jobs allow"), "{text}");
}

#[test]
fn a_rank_sending_one_outcome_past_the_output_limit_is_lost() {
    if !have_mpirun("a_rank_sending_one_outcome_past_the_output_limit_is_lost") {
        return;
    }
    // The message is far within what the rank's jobs allow; one outcome
    // in it is not what a sound rank could have sent.
    let text = lost_for_what_it_sends("long-outcome");
    assert!(
        text.contains("rank 1 (host") && text.contains("a stderr of 4097 bytes, over the output limit of 4096"),
        "{text}"
    );
}

#[test]
fn a_module_larger_than_a_rank_accepts_is_refused_before_it_is_sent() {
    if !have_mpirun("a_module_larger_than_a_rank_accepts_is_refused_before_it_is_sent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "1\n").unwrap();
    // Ranks 1 and 2 accept modules of 1 KiB: they refuse rank 0's by its
    // size alone, and rank 0 names the first.
    let mut command = mpirun(1);
    command.args(["run", MODULE, "sqrt", "-i"]).arg(&input).args([":", "-np", "2", env!("CARGO_BIN_EXE_wasmpool")]);
    command.args(["run", MODULE, "sqrt", "--max-module-size", "1KiB", "-i"]).arg(&input);
    let out = command.output().unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("rank 1 (host") && message.contains("more than this rank accepts"), "{message}");
    assert!(message.contains("nothing was received"), "{message}");
}

#[test]
fn environment_values_never_appear_when_ranks_disagree_on_them() {
    if !have_mpirun("environment_values_never_appear_when_ranks_disagree_on_them") {
        return;
    }
    let module = guest_tasks::WASI_WASM_PATH;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "\"API_TOKEN\"\n").unwrap();
    let mpmd = |rest: &[&str]| {
        let mut command = mpirun(1);
        command.args(["run", module, "env_var", "--allow-env", "API_TOKEN=rank-zero-value-7f3a", "-i"]).arg(&input);
        command.args([":", "-np", "2", env!("CARGO_BIN_EXE_wasmpool"), "run", module, "env_var"]).args(rest);
        command.arg("-i").arg(&input);
        command.output().unwrap()
    };
    // The same value everywhere: the job runs.
    let out = mpmd(&["--allow-env", "API_TOKEN=rank-zero-value-7f3a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"rank-zero-value-7f3a\"\n");
    // Another value: refused, naming the variable and neither value.
    let out = mpmd(&["--allow-env", "API_TOKEN=rank-one-value-91bc"]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("rank 1 (host") && message.contains("API_TOKEN"), "{message}");
    assert!(!message.contains("rank-one-value") && !message.contains("rank-zero-value"), "{message}");
    // Another variable: the settings differ by its name only.
    let out = mpmd(&["--allow-env", "OTHER=rank-one-value-91bc"]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("OTHER") && message.contains("other pool settings"), "{message}");
    assert!(!message.contains("rank-one-value") && !message.contains("rank-zero-value"), "{message}");
}

/// Two test "hosts": network namespaces joined by a bridge, each with an
/// address of its own, so ranks talk TCP through veth links that can be
/// cut. Removed on drop.
struct Hosts {
    names: [String; 2],
    bridge: String,
    links: [String; 2],
    agent: PathBuf,
    /// The hosts' /24: `10.N.0`.
    subnet: String,
}

impl Hosts {
    /// Needs root and iproute2; `None` (the test is skipped) otherwise.
    fn new(dir: &Path) -> Option<Hosts> {
        let tag = std::process::id() % 10_000;
        let ip = |args: &str| Command::new("ip").args(args.split(' ')).output().is_ok_and(|o| o.status.success());
        // A /24 no route uses yet: a bridge left by a killed run, on the
        // same subnet, would take the traffic meant for this one.
        let unused = |n: &u32| {
            Command::new("ip")
                .args(["-4", "route", "show", &format!("10.{n}.0.0/24")])
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
        };
        let subnet = (0..100).map(|i| 70 + (tag + i) % 100).find(unused)?;
        let hosts = Hosts {
            names: [format!("wp{tag}a"), format!("wp{tag}b")],
            bridge: format!("wpbr{tag}"),
            links: [format!("wpv{tag}a"), format!("wpv{tag}b")],
            agent: dir.join("netns-agent"),
            subnet: format!("10.{subnet}.0"),
        };
        if !ip(&format!("link add {} type bridge", hosts.bridge)) {
            return None;
        }
        let mut ok = ip(&format!("addr add 10.{subnet}.0.1/24 dev {}", hosts.bridge))
            && ip(&format!("link set {} up", hosts.bridge));
        for (i, (name, link)) in hosts.names.iter().zip(&hosts.links).enumerate() {
            let address = format!("10.{subnet}.0.{}", 11 + i);
            ok = ok
                && ip(&format!("netns add {name}"))
                && ip(&format!("link add {link} type veth peer name eth0 netns {name}"))
                && ip(&format!("link set {link} master {} up", hosts.bridge))
                && ip(&format!("netns exec {name} ip addr add {address}/24 dev eth0"))
                && ip(&format!("netns exec {name} ip link set eth0 up"))
                && ip(&format!("netns exec {name} ip link set lo up"));
        }
        // mpirun's "rsh": runs a command on a "host" (an address) in its
        // namespace, with a temporary folder of its own as a real host has:
        // Open MPI's daemons of two hosts that share /tmp (and a host name)
        // race to create the same session folder and now and then fail
        // with "File exists".
        let tmp = dir.join("hosts");
        let script = format!(
            "#!/bin/sh\nhost=$1; shift\ncase $host in\n  10.{subnet}.0.11) ns={};;\n  10.{subnet}.0.12) ns={};;\n  \
             *) echo \"no such test host: $host\" >&2; exit 1;;\nesac\nexport TMPDIR={}/$ns\nmkdir -p \"$TMPDIR\"\n\
             exec ip netns exec \"$ns\" sh -c \"$*\"\n",
            hosts.names[0],
            hosts.names[1],
            tmp.display()
        );
        std::fs::write(&hosts.agent, script).unwrap();
        ok &= Command::new("chmod").arg("+x").arg(&hosts.agent).status().is_ok_and(|s| s.success());
        ok.then_some(hosts)
    }

    /// `mpirun` with ranks 0 and 1 on the first host and rank 2 on the
    /// second, over TCP only.
    fn mpirun(&self) -> Command {
        let subnet = &self.subnet;
        mpirun_with(
            3,
            &[
                // Open MPI 4.1.4's daemon (orted, started only for "other
                // hosts") now and then segfaults in hwloc_shmem_topology_write
                // while mapping the topology into a hole of its address space
                // (1 launch in about 8 here; "ORTE was unable to reliably
                // start one or more daemons"). No hole, no shared topology:
                // each rank reads its own, as without the daemon.
                "--mca",
                "rtc_hwloc_vmhole",
                "none",
                "--mca",
                "routed",
                "direct",
                "--mca",
                "plm_rsh_agent",
                &self.agent.to_string_lossy(),
                "--host",
                &format!("{subnet}.11:2,{subnet}.12:1"),
                "--mca",
                "btl",
                "tcp,self",
                "--mca",
                "btl_tcp_if_include",
                &format!("{subnet}.0/24"),
                "--mca",
                "oob_tcp_if_include",
                &format!("{subnet}.0/24"),
            ],
        )
    }

    fn set_link(&self, host: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        let status = Command::new("ip").args(["link", "set", &self.links[host], state]).status().unwrap();
        assert!(status.success(), "ip link set {} {state}", self.links[host]);
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}

#[test]
fn ranks_on_separate_hosts_over_tcp_and_a_cut_link() {
    if !have_mpirun("ranks_on_separate_hosts_over_tcp_and_a_cut_link") {
        return;
    }
    let job = Job::walks();
    let Some(hosts) = Hosts::new(job.dir.path()) else {
        assert!(std::env::var_os("WASMPOOL_REQUIRE_MPI").is_none(), "CI needs network namespaces (root, iproute2)");
        eprintln!("skipped: ranks_on_separate_hosts_over_tcp_and_a_cut_link: needs root and iproute2 (ip netns)");
        return;
    };
    let whole = job.local("random_walk", "whole.jsonl", &[]);
    let run = |output: &Path, extra: &[&str]| {
        let mut command = hosts.mpirun();
        command.args(["run", MODULE, "random_walk", "--seed", "7", "-q", "-i"]).arg(&job.input).arg("-o").arg(output);
        command.args(extra);
        command
    };
    // Whole, over TCP between the two hosts.
    let output = job.out("tcp.jsonl");
    let out = run(&output, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&output).unwrap() == whole, "over TCP between hosts: the same bytes");
    // The second host's link cut mid-run: rank 0 finds rank 2 silent,
    // saves what it has, and ends the job with status 75. mpirun itself
    // can only finish once it reaches that host's daemon again, so the
    // link comes back once rank 0 has given up.
    let output = job.out("cut.jsonl");
    let log = job.out("cut.log");
    let mut child = run(&output, &["--rank-timeout", "3s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_output(&output, 64 << 10, &mut child, Some(&log));
    hosts.set_link(1, false);
    let cut = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("--resume to finish") || cut.elapsed() > Duration::from_secs(20) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let found = cut.elapsed();
    hosts.set_link(1, true);
    let status = child.wait().unwrap();
    assert!(text.contains("rank 2 (host") && text.contains("went silent"), "{text}");
    assert!(found < Duration::from_secs(8), "the cut link was found {found:?} after it was cut");
    assert_eq!(status.code(), Some(75), "{text}");
    let out = run(&output, &["--resume"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&output).unwrap() == whole, "after the cut and the resume: the same bytes");
}
