//! Cluster mode against a pool on this machine alone, side by side
//! (docs/benchmarks.md, "Cluster mode"):
//!
//! ```sh
//! cargo bench --features mpi --bench cluster            # needs Open MPI's mpirun
//! cargo bench --features mpi --bench cluster -- --runs 5
//! cargo bench --features mpi --bench cluster -- --scale   # rank 0's dispatch only
//! ```
//!
//! The bench starts itself under `mpirun` for each cluster row; every row's
//! results are checked equal to the local pool's before its time counts.
//! - maps: `sqrt` over 1,000,000 inputs and Mandelbrot 2000² (a row per
//!   task), on a local pool of every CPU, on one rank (`--bind-to none`,
//!   the same cores), and on two ranks of one core each;
//! - dispatch: 4,000,000 `noop` tasks in chunks of 4096 on kept instances,
//!   three ranks over shared memory and over TCP on loopback: the tasks per
//!   second rank 0 gets through;
//! - idle: the CPU each rank uses while rank 0 has nothing to give it;
//! - scale (`--scale`: only this): rank 0's dispatcher against 2 to 16
//!   ranks of one worker whose tasks return at once (`noop` in chunks of
//!   one, kept instances): the chunks per second it gets through, and its
//!   own thread's CPU time per chunk another rank ran, the figure
//!   docs/cluster.md's scaling model starts from.

#[path = "common/runs.rs"]
mod runs;

use anyhow::{Context, ensure};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmpool::cluster::Cluster;
use wasmpool::{InstanceMode, Pool, PoolBuilder};

const SQRTS: usize = 1_000_000;
const MANDEL: u32 = 2000;
const NOOPS: usize = 4_000_000;
/// Chunks of one `noop` each in a row of the scaling measurement.
const SCALE_CHUNKS: usize = 100_000;
/// The rank counts of the scaling measurement.
const SCALE_RANKS: [usize; 4] = [2, 4, 8, 16];

fn main() -> anyhow::Result<()> {
    if wasmpool::cluster::launcher().is_some() {
        return rank_main();
    }
    if std::env::args().any(|a| a == "--scale") {
        return scale();
    }
    let runs = runs::runs(3);
    println!("cluster mode against one machine; median of {runs} runs; {} CPUs", cpus());
    println!("{:<58} {:>10} {:>14} {:>8}", "mode", "time", "rate", "ratio");
    for workload in ["sqrt", "mandelbrot"] {
        let local = median(runs, || local_run(workload))?;
        row(&format!("{workload}: local pool, {} workers (baseline)", cpus()), local, workload, local);
        let one = median(runs, || mpirun(&["-np", "1", "--bind-to", "none"], workload))?;
        row(&format!("{workload}: 1 rank, {} workers", cpus()), one, workload, local);
        let two = median(runs, || mpirun(&["-np", "2", "--bind-to", "core"], workload))?;
        row(&format!("{workload}: 2 ranks of 1 core (1 worker each)"), two, workload, local);
    }
    let local = median(runs, || local_run("noop"))?;
    row("noop dispatch: local pool (baseline)", local, "noop", local);
    let shared = median(runs, || mpirun(&["-np", "3", "--oversubscribe", "--bind-to", "none"], "noop"))?;
    row("noop dispatch: 3 ranks, shared memory", shared, "noop", local);
    let tcp = median(runs, || {
        mpirun(
            &[
                "-np",
                "3",
                "--oversubscribe",
                "--bind-to",
                "none",
                "--mca",
                "btl",
                "tcp,self",
                "--mca",
                "btl_tcp_if_include",
                "lo",
            ],
            "noop",
        )
    })?;
    row("noop dispatch: 3 ranks, TCP on loopback", tcp, "noop", local);
    let idle = run_mpirun(&["-np", "3", "--oversubscribe", "--bind-to", "none"], "idle")?;
    for line in idle.lines().filter(|l| l.starts_with("idle ")) {
        println!("{line}");
    }
    Ok(())
}

/// Rank 0's dispatcher against more and more ranks whose tasks return at
/// once: one mpirun per rank count.
fn scale() -> anyhow::Result<()> {
    println!(
        "rank 0's dispatch: {SCALE_CHUNKS} chunks of one noop, ranks of 1 worker, kept instances; {} CPUs",
        cpus()
    );
    println!(
        "{:>6} {:>14} {:>16} {:>22} {:>18}",
        "ranks", "chunks/s", "by other ranks", "dispatcher CPU/chunk", "dispatcher busy"
    );
    for ranks in SCALE_RANKS {
        let out = run_mpirun(&["-np", &ranks.to_string(), "--oversubscribe", "--bind-to", "none"], "scale")?;
        let line = out.lines().find_map(|l| l.strip_prefix("scale ")).context("rank 0 printed no scale line")?;
        let numbers: Vec<f64> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
        let [seconds, remote, cpu] = numbers[..] else { anyhow::bail!("a scale line of {} numbers", numbers.len()) };
        println!(
            "{ranks:>6} {:>14.0} {:>15.1}% {:>19.1} µs {:>17.1}%",
            SCALE_CHUNKS as f64 / seconds,
            100.0 * remote / SCALE_CHUNKS as f64,
            1e6 * cpu / remote.max(1.0),
            100.0 * cpu / seconds
        );
    }
    Ok(())
}

/// The `scale` row on rank 0: the map's time, the chunks the other ranks
/// ran, and the dispatcher thread's CPU time meanwhile.
fn scale_rank0(pool: &Pool) -> anyhow::Result<()> {
    let task = pool.task("noop")?.chunk_size(1);
    // A warm-up: every rank's instance made.
    task.imap::<_, ()>(std::iter::repeat_n((), 1000))?.count();
    let before_stats = pool.cluster_stats().unwrap_or_default();
    let before = dispatcher_cpu().context("no wasmpool-cluster thread in this process")?;
    let started = Instant::now();
    let done = task.imap::<_, ()>(std::iter::repeat_n((), SCALE_CHUNKS))?.count();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = (dispatcher_cpu().context("the dispatcher ended")? - before).as_secs_f64();
    ensure!(done == SCALE_CHUNKS, "{done} of {SCALE_CHUNKS} noops");
    let remote_tasks =
        |stats: &[wasmpool::cluster::RankStats]| -> u64 { stats.iter().filter(|s| s.rank != 0).map(|s| s.tasks).sum() };
    let remote = remote_tasks(&pool.cluster_stats().unwrap_or_default()) - remote_tasks(&before_stats);
    println!("scale {seconds} {remote} {cpu}");
    Ok(())
}

/// CPU time of this process's cluster dispatcher thread so far.
fn dispatcher_cpu() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // The kernel keeps 15 bytes of a thread's name: "wasmpool-cluste".
        if "wasmpool-cluster".starts_with(comm.trim()) && comm.trim().len() >= 15 {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            return ticks_of(&stat);
        }
    }
    None
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn builder() -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).seed(1)
}

/// Runs `workload` on `pool`; its time, after checking its results.
fn workload(pool: &Pool, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match name {
        "sqrt" => {
            let roots: Vec<f64> = pool.map("sqrt", (0..SQRTS).map(|i| i as f64))?;
            let elapsed = started.elapsed();
            ensure!(roots.iter().enumerate().all(|(i, r)| r.to_bits() == (i as f64).sqrt().to_bits()), "sqrt differs");
            Ok(elapsed)
        }
        "mandelbrot" => {
            let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..MANDEL).map(|y| (y, MANDEL, MANDEL, 256u32)))?;
            let elapsed = started.elapsed();
            let expected = guest_tasks::mandelbrot::mandel_row(MANDEL / 3, MANDEL, MANDEL, 256);
            ensure!(rows.len() == MANDEL as usize && rows[(MANDEL / 3) as usize] == expected, "mandelbrot differs");
            Ok(elapsed)
        }
        "noop" => {
            let done = pool.task("noop")?.chunk_size(4096).imap::<_, ()>(std::iter::repeat_n((), NOOPS))?.count();
            ensure!(done == NOOPS, "{done} of {NOOPS} noops");
            Ok(started.elapsed())
        }
        other => anyhow::bail!("no workload {other}"),
    }
}

fn local_run(name: &str) -> anyhow::Result<Duration> {
    let mut builder = builder();
    if name == "noop" {
        builder = builder.instance_mode(InstanceMode::PerWorker);
    }
    let pool = builder.build()?;
    workload(&pool, name)
}

/// One mpirun of this bench with `options`, running `name`; rank 0's time.
fn mpirun(options: &[&str], name: &str) -> anyhow::Result<Duration> {
    let out = run_mpirun(options, name)?;
    let nanos: u64 =
        out.lines().find_map(|l| l.strip_prefix("time_ns ")).context("rank 0 printed no time")?.trim().parse()?;
    Ok(Duration::from_nanos(nanos))
}

fn run_mpirun(options: &[&str], name: &str) -> anyhow::Result<String> {
    let me = std::env::current_exe()?;
    let out = Command::new("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(options)
        .arg(me)
        .arg("--rank")
        .arg(name)
        .output()
        .context("cannot start mpirun: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(out.status.success(), "mpirun failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// Under mpirun: every rank joins; rank 0 runs the workload and prints
/// its time (or, for `idle`, every rank's CPU use while it waits).
fn rank_main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.iter().position(|a| a == "--rank").and_then(|i| args.get(i + 1)).context("--rank NAME")?.clone();
    let cluster = Cluster::join()?;
    let mut builder = builder();
    if name == "noop" || name == "scale" {
        builder = builder.instance_mode(InstanceMode::PerWorker);
    }
    if name == "scale" {
        builder = builder.workers(1);
    }
    let Some(pool) = builder.cluster(cluster).build_or_serve()? else { return Ok(()) };
    if name == "idle" {
        return idle(&pool);
    }
    if name == "scale" {
        return scale_rank0(&pool);
    }
    // A warm-up: the other ranks' first tasks.
    workload(&pool, if name == "noop" { "noop" } else { "sqrt" })?;
    let elapsed = workload(&pool, &name)?;
    println!("time_ns {}", elapsed.as_nanos());
    Ok(())
}

/// CPU time of a process so far (user and system), from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    ticks_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User and system time in a /proc `stat` line.
fn ticks_of(stat: &str) -> Option<Duration> {
    let fields: Vec<&str> = stat.rsplit(") ").next()?.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux counts in USER_HZ, 100 per second.
    Some(Duration::from_millis(ticks * 10))
}

/// This machine's processes of this job's other ranks.
fn ranks_here() -> Vec<(usize, u32)> {
    let job = std::env::var("OMPI_COMM_WORLD_RANK").ok().and(std::env::var("OMPI_MCA_ess_base_jobid").ok());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let var = |name: &str| {
            vars.iter()
                .find_map(|v| v.strip_prefix(name.as_bytes())?.strip_prefix(b"="))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if job.is_some() && var("OMPI_MCA_ess_base_jobid") != job {
            continue;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe != std::env::current_exe().ok() {
            continue;
        }
        if let Some(rank) = var("OMPI_COMM_WORLD_RANK").and_then(|r| r.parse().ok()) {
            found.push((rank, pid));
        }
    }
    found.sort();
    found
}

fn idle(pool: &Pool) -> anyhow::Result<()> {
    // Let set-up settle, then measure five seconds of waiting.
    std::thread::sleep(Duration::from_secs(1));
    let ranks = ranks_here();
    let before: Vec<Option<Duration>> = ranks.iter().map(|(_, pid)| cpu_time(*pid)).collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let wall = started.elapsed();
    for ((rank, pid), before) in ranks.iter().zip(before) {
        if let (Some(before), Some(after)) = (before, cpu_time(*pid)) {
            let share = 100.0 * (after - before).as_secs_f64() / wall.as_secs_f64();
            println!("idle rank {rank}: {share:.1}% of a core while waiting ({} workers in the job)", pool.workers());
        }
    }
    Ok(())
}

fn median(runs: usize, mut f: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut times = (0..runs).map(|_| f()).collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn row(mode: &str, elapsed: Duration, workload: &str, baseline: Duration) {
    let items = match workload {
        "sqrt" => SQRTS as f64,
        "mandelbrot" => f64::from(MANDEL),
        _ => NOOPS as f64,
    };
    let unit = if workload == "mandelbrot" { "rows/s" } else { "tasks/s" };
    let rate = items / elapsed.as_secs_f64();
    let ratio = baseline.as_secs_f64() / elapsed.as_secs_f64();
    println!("{mode:<58} {:>8.3} s {rate:>10.0} {unit:<7} {ratio:>6.2}x", elapsed.as_secs_f64());
}
