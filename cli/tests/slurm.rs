//! Cluster mode under a real Slurm (`bash .ci/slurm start`): `srun
//! --mpi=pmix`, the refusal of a job step without it, and the batch script
//! of docs/cluster.md, copied from the docs, through a time limit, a node
//! Slurm marks down and an `scancel`, each compared byte for byte with an
//! uninterrupted run on this machine alone.
//!
//! Built only with the `mpi` feature (`.ci/cluster` runs it with
//! `--test-threads 1`: the lost-node test takes the only node down). Without
//! a Slurm to talk to (`sinfo` fails) each test says it is skipped, unless
//! WASMPOOL_REQUIRE_SLURM is set (CI), where that is a failure. The jobs'
//! tasks sleep (`nap`, with the monotonic clock granted) rather than
//! compute, so their length is the same on any machine and the reference
//! run beside them costs no CPU.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The module of `nap`, the task that sleeps.
const MODULE: &str = guest_tasks::WASI_WASM_PATH;
/// Workers per rank: the ranks mostly sleep.
const WORKERS_PER_RANK: usize = 4;
/// Ranks of every job.
const RANKS: usize = 3;
/// The batch jobs' length uninterrupted, in seconds of sleep spread over
/// every worker of every rank (about a third more in all): longer than the
/// 50 s within which Slurm sends the time-limit signal, so that it comes
/// before the end.
const BATCH_SECONDS: usize = 60;
/// The length of the jobs interrupted once they have written some results.
const SHORT_SECONDS: usize = 20;

fn have_slurm(test: &str) -> bool {
    let found = Command::new("sinfo").args(["-h", "-o", "%t"]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("WASMPOOL_REQUIRE_SLURM").is_none(),
            "no Slurm answers (sinfo failed), and CI requires one: `bash .ci/slurm start`, then the \
             SLURM_CONF it prints"
        );
        eprintln!("skipped: {test}: no Slurm answers (as root: `bash .ci/slurm start`, then export its SLURM_CONF)");
    }
    found
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Runs a Slurm command (`scontrol`, `sbatch`…) and returns its stdout;
/// the test fails if it fails.
fn slurm(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `inputs` naps of 100 to 149 ms, and what they give on this machine
/// alone: the bytes every run in Slurm must write. That run starts with
/// the job and runs beside the runs in Slurm (it sleeps, too).
struct Job {
    dir: tempfile::TempDir,
    input: PathBuf,
    inputs: usize,
    alone: Mutex<Option<Child>>,
    expected: OnceLock<Result<Vec<u8>, String>>,
}

impl Job {
    fn new(inputs: usize) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("params.jsonl");
        let lines: String = (0..inputs).map(|i| format!("{}\n", 100 + i % 50)).collect();
        std::fs::write(&input, lines).unwrap();
        // Every rank's workers, and more: the naps cost no CPU.
        let workers = (4 * RANKS * WORKERS_PER_RANK).to_string();
        let alone = Command::new(env!("CARGO_BIN_EXE_wasmpool"))
            .args(["run", MODULE, "nap", "--seed", "7", "--allow-monotonic-clock", "-q", "-w", &workers, "-i"])
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("alone.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Job { dir, input, inputs, alone: Mutex::new(Some(alone)), expected: OnceLock::new() }
    }

    /// The output of the run on this machine alone, once it has ended
    /// (every test that shares the job fails alike if it failed).
    fn expected(&self) -> &[u8] {
        let expected = self.expected.get_or_init(|| {
            let alone = self.alone.lock().unwrap_or_else(PoisonError::into_inner).take();
            let out = alone.ok_or("the run alone was never started")?.wait_with_output().map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("the run on this machine alone failed: {}", text(&out)));
            }
            let expected = std::fs::read(self.dir.path().join("alone.jsonl")).map_err(|e| e.to_string())?;
            let lines = expected.iter().filter(|b| **b == b'\n').count();
            if lines != self.inputs {
                return Err(format!("the run alone wrote {lines} lines of {}", self.inputs));
            }
            Ok(expected)
        });
        expected.as_deref().unwrap_or_else(|why| panic!("{why}"))
    }

    /// The job of the time-limit test: [`BATCH_SECONDS`] long.
    fn batch() -> &'static Job {
        static JOB: OnceLock<Job> = OnceLock::new();
        JOB.get_or_init(|| Job::new(BATCH_SECONDS * RANKS * WORKERS_PER_RANK * 1000 / 125))
    }

    /// The job of the tests that interrupt a job once it has written some
    /// results: [`SHORT_SECONDS`] long.
    fn short() -> &'static Job {
        static JOB: OnceLock<Job> = OnceLock::new();
        JOB.get_or_init(|| Job::new(SHORT_SECONDS * RANKS * WORKERS_PER_RANK * 1000 / 125))
    }
}

/// `srun -n 3 --mpi=MPI wasmpool run … nap`, writing `output`.
fn srun(mpi: &str, job: &Job, output: &Path) -> Output {
    Command::new("srun")
        .args([&format!("--mpi={mpi}"), "-n", &RANKS.to_string(), "--time=2"])
        .arg(env!("CARGO_BIN_EXE_wasmpool"))
        .args(["run", MODULE, "nap", "--seed", "7", "--allow-monotonic-clock", "-q"])
        .args(["-w", &WORKERS_PER_RANK.to_string(), "-i"])
        .arg(&job.input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap()
}

#[test]
fn srun_with_pmix_writes_the_bytes_of_one_machine_and_without_it_is_refused() {
    if !have_slurm("srun_with_pmix_writes_the_bytes_of_one_machine_and_without_it_is_refused") {
        return;
    }
    let job = Job::new(600);
    let output = job.dir.path().join("pmix.jsonl");
    let out = srun("pmix", &job, &output);
    assert!(out.status.success(), "srun --mpi=pmix: {}", text(&out));
    assert!(std::fs::read(&output).unwrap() == job.expected(), "srun --mpi=pmix: other bytes than on one machine");

    // Slurm's default plugin gives the tasks no MPI world together: before
    // the refusal, each ran the whole job and wrote the same file.
    let output = job.dir.path().join("none.jsonl");
    let out = srun("none", &job, &output);
    let said = text(&out);
    assert!(!out.status.success(), "srun --mpi=none was not refused: {said}");
    assert!(said.contains("SLURM_STEP_NUM_TASKS=3") && said.contains("srun --mpi=pmix"), "{said}");
    assert!(!output.exists(), "a refused job step wrote its output");

    // Unless independent jobs are what the step is for: each task its own
    // output, with WASMPOOL_CLUSTER=off.
    let farm = job.dir.path().join("farm");
    let script = format!(
        "exec {} run {MODULE} nap --seed 7 --allow-monotonic-clock -q -w 16 -i {} -o {}.$SLURM_PROCID",
        env!("CARGO_BIN_EXE_wasmpool"),
        job.input.display(),
        farm.display()
    );
    let out = Command::new("srun")
        .args(["--mpi=none", "-n", "2", "--time=2", "--export=ALL,WASMPOOL_CLUSTER=off", "bash", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "a job step of independent jobs: {}", text(&out));
    for task in 0..2 {
        let written = std::fs::read(format!("{}.{task}", farm.display())).unwrap();
        assert!(written == job.expected(), "task {task} of the independent jobs: other bytes than on one machine");
    }
}

/// The batch script of docs/cluster.md's "On Slurm", as the docs show it,
/// with its task and options set for `nap`.
fn docs_batch_script() -> String {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cluster.md");
    let docs = std::fs::read_to_string(&docs).unwrap();
    let section = docs.split("\n## On Slurm\n").nth(1).expect("docs/cluster.md has no \"## On Slurm\" section");
    let script = section.split("```sh\n").nth(1).and_then(|rest| rest.split("\n```").next());
    let script = script.expect("docs/cluster.md's \"On Slurm\" has no ```sh block");
    assert!(script.starts_with("#!/bin/bash"), "the docs' batch script:\n{script}");
    // The docs' job runs `simulate`; this one naps, with the clock it needs.
    let theirs = "tasks.wasm simulate ";
    assert_eq!(script.matches(theirs).count(), 1, "the docs' srun line has changed:\n{script}");
    let ours = format!("tasks.wasm nap -w {WORKERS_PER_RANK} --allow-monotonic-clock ");
    script.replace(theirs, &ours)
}

/// A submitted batch job and the folder it runs in.
struct BatchJob<'a> {
    job: &'a Job,
    dir: PathBuf,
    id: String,
}

impl BatchJob<'_> {
    /// Submits the docs' script in a folder of its own, beside `tasks.wasm`
    /// and `params.jsonl`, on [`RANKS`] tasks of this one node, with
    /// `options` (a time limit, a signal) after the script's own.
    fn submit<'a>(job: &'a Job, name: &str, options: &[&str]) -> BatchJob<'a> {
        let dir = job.dir.path().join(name);
        if !dir.exists() {
            std::fs::create_dir(&dir).unwrap();
            std::fs::copy(MODULE, dir.join("tasks.wasm")).unwrap();
            std::fs::copy(&job.input, dir.join("params.jsonl")).unwrap();
            std::fs::write(dir.join("job.sh"), docs_batch_script()).unwrap();
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_wasmpool")).parent().unwrap();
        let path = std::env::join_paths(
            std::iter::once(bin.to_path_buf())
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let ntasks = format!("--ntasks-per-node={RANKS}");
        let out = Command::new("sbatch")
            .current_dir(&dir)
            .env("PATH", path)
            .args(["--parsable", "--nodes=1", &ntasks, "--cpus-per-task=1", "--output=slurm.out"])
            .args(options)
            .arg("job.sh")
            .output()
            .unwrap();
        assert!(out.status.success(), "sbatch: {}", text(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_owned();
        assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "sbatch --parsable said {id:?}");
        BatchJob { job, dir, id }
    }

    /// The job's fields as `scontrol show job` gives them.
    fn field(&self, name: &str) -> String {
        let shown = slurm("scontrol", &["show", "job", "-o", &self.id]);
        let prefix = format!("{name}=");
        shown.split_whitespace().find_map(|word| word.strip_prefix(&prefix)).unwrap_or_default().to_owned()
    }

    fn state(&self) -> String {
        self.field("JobState")
    }

    fn restarts(&self) -> u32 {
        self.field("Restarts").parse().unwrap_or(0)
    }

    /// Waits up to `limit` for `done`, failing with the job's state, its
    /// output and the journal's length.
    fn wait(&self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            if started.elapsed() > limit {
                let _ = Command::new("scancel").arg(&self.id).status();
                panic!("{what}: not after {limit:?}; {}", self.report());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Lines of the results written so far.
    fn results(&self) -> usize {
        let bytes = std::fs::read(self.dir.join("results.jsonl")).unwrap_or_default();
        bytes.iter().filter(|b| **b == b'\n').count()
    }

    fn report(&self) -> String {
        let shown = Command::new("scontrol").args(["show", "job", &self.id]).output().map(|o| text(&o));
        let out = std::fs::read_to_string(self.dir.join("slurm.out")).unwrap_or_default();
        format!(
            "job {}: {}\n{} of {} results written; the job's output:\n{out}",
            self.id,
            shown.unwrap_or_default(),
            self.results(),
            self.job.inputs
        )
    }

    /// Waits for the job to complete and checks its results against the
    /// run on this machine alone.
    fn finishes_as_alone(&self, limit: Duration) {
        self.wait("the job completes", limit, |job| {
            let state = job.state();
            assert!(
                matches!(state.as_str(), "PENDING" | "RUNNING" | "COMPLETING" | "COMPLETED" | "REQUEUED"),
                "the job ended {state}; {}",
                job.report()
            );
            state == "COMPLETED"
        });
        let written = std::fs::read(self.dir.join("results.jsonl")).unwrap();
        assert!(written == self.job.expected(), "other bytes than on one machine; {}", self.report());
    }
}

/// The completions Slurm recorded (`JobCompType=jobcomp/filetxt`, one line
/// per run that ended, requeues included), for job `id`: their states.
fn completions(id: &str) -> Vec<String> {
    let config = slurm("scontrol", &["show", "config"]);
    let log = config
        .lines()
        .find_map(|line| line.strip_prefix("JobCompLoc").map(|rest| rest.trim_start_matches([' ', '=']).trim()))
        .unwrap_or_default()
        .to_owned();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let id = format!("JobId={id} ");
    log.lines()
        .filter(|line| line.starts_with(&id))
        .filter_map(|line| line.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).map(str::to_owned))
        .collect()
}

#[test]
fn the_docs_batch_script_requeues_itself_at_its_time_limit_and_resumes() {
    if !have_slurm("the_docs_batch_script_requeues_itself_at_its_time_limit_and_resumes") {
        return;
    }
    let job = Job::batch();
    // A time limit of 2 minutes, and the signal asked 70 s before it. Slurm
    // checks every 30 s and sends it when the time left is less than that
    // and 30 s: 20 to 50 s into every run, with results written.
    let batch = BatchJob::submit(job, "time-limit", &["--time=2", "--signal=B:USR1@70"]);
    batch.wait("the script requeues itself at the signal", Duration::from_secs(120), |batch| batch.restarts() >= 1);
    let first = batch.results();
    assert!(first > 0 && first < job.inputs, "{}", batch.report());
    // Its next run would be signalled as soon: give it the time to finish.
    slurm("scontrol", &["update", &format!("jobid={}", batch.id), "TimeLimit=8"]);
    batch.finishes_as_alone(Duration::from_secs(180));
    let runs = completions(&batch.id);
    assert!(runs.len() == 2 && runs[0] != "COMPLETED", "the runs Slurm recorded: {runs:?}");
    let out = std::fs::read_to_string(batch.dir.join("slurm.out")).unwrap_or_default();
    assert!(out.contains("done before"), "the second run resumed: {out}");
    eprintln!("requeued at the time limit with {first} results written; resumed and completed");
}

#[test]
fn a_job_on_a_node_slurm_marks_down_is_requeued_and_resumes() {
    if !have_slurm("a_job_on_a_node_slurm_marks_down_is_requeued_and_resumes") {
        return;
    }
    let job = Job::short();
    let batch = BatchJob::submit(job, "node-down", &["--time=8"]);
    batch.wait("some results", Duration::from_secs(120), |batch| batch.results() >= 100);
    let node = batch.field("NodeList");
    let update = |state: &str| {
        let reason = "reason=wasmpool test: a lost node";
        slurm("scontrol", &["update", &format!("nodename={node}"), &format!("state={state}"), reason]);
    };
    update("down");
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        batch.wait("Slurm requeues the job", Duration::from_secs(60), |batch| batch.restarts() >= 1);
    }));
    // The node comes back whatever happened: the other tests need it.
    update("resume");
    if let Err(panic) = restarted {
        std::panic::resume_unwind(panic);
    }
    batch.finishes_as_alone(Duration::from_secs(180));
    let runs = completions(&batch.id);
    assert!(runs.len() == 2 && runs[0] != "COMPLETED", "the runs Slurm recorded: {runs:?}");
    let out = std::fs::read_to_string(batch.dir.join("slurm.out")).unwrap_or_default();
    assert!(out.contains("done before"), "the second run resumed: {out}");
}

#[test]
fn a_cancelled_job_submitted_again_resumes() {
    if !have_slurm("a_cancelled_job_submitted_again_resumes") {
        return;
    }
    let job = Job::short();
    let batch = BatchJob::submit(job, "cancelled", &["--time=8"]);
    batch.wait("some results", Duration::from_secs(120), |batch| batch.results() >= 100);
    slurm("scancel", &[&batch.id]);
    batch.wait("the job is cancelled", Duration::from_secs(60), |batch| batch.state() == "CANCELLED");
    assert!(batch.results() < job.inputs, "{}", batch.report());
    // The same script, submitted again in the same folder, finds the
    // journal and resumes.
    let again = BatchJob::submit(job, "cancelled", &["--time=8"]);
    again.finishes_as_alone(Duration::from_secs(180));
    let out = std::fs::read_to_string(again.dir.join("slurm.out")).unwrap_or_default();
    assert!(out.contains("done before"), "the second job resumed: {out}");
}
