//! One command, every mode, side by side: the same three workloads in
//! native Rust (one thread, and rayon on every core), in wasmpool (thread
//! workers on every core and on one, with a fresh instance per task and
//! with one kept per worker, without NaN canonicalization, and worker
//! processes) and in Python's
//! `multiprocessing.Pool` (`benches/compare_mp.py`, with the system
//! `python3`), with throughput, ratios and wasmpool's scaling from one
//! worker to all. Results are checked equal across modes (a fingerprint of
//! the result bytes) before any time is printed.
//!
//! ```text
//! cargo bench --bench compare               # the sizes of docs/benchmarks.md
//! cargo bench --bench compare -- --quick    # a tenth of each, for a quick look
//! cargo bench --bench compare -- --runs 3   # runs per mode (default 5; Python 3)
//! cargo bench --bench compare -- --only mandel   # workloads whose name contains this
//! cargo bench --bench compare -- --mode threads   # modes whose name contains this
//! cargo bench --bench compare -- --mode rayon,threads,cpunans,kept   # or any of these
//! ```
//!
//! Workloads: Hinsen's map (`sqrt` over 1,000,000 numbers, chunk size 1
//! and automatic), Mandelbrot (2000 × 2000, 256 iterations, one row per
//! task) and Monte-Carlo π (200 tasks of 1,000,000 samples, one seed each).

use rayon::prelude::*;
use std::process::Command;
use std::time::{Duration, Instant};
use wasmpool::{InstanceMode, Pool, WorkerKind};

/// The workloads, with their sizes.
#[derive(Debug, Clone, Copy)]
enum Workload {
    Sqrt { count: u32, chunk1: bool },
    Mandelbrot { size: u32, max_iter: u32 },
    Pi { tasks: u64, samples: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Native,
    Rayon,
    Threads,
    /// wasmpool thread workers, one worker: the base of the scaling ratio.
    OneWorker,
    /// wasmpool thread workers keeping one instance each
    /// (`InstanceMode::PerWorker`): what the fresh instance per task costs.
    Kept,
    /// wasmpool thread workers without NaN canonicalization
    /// (`canonicalize_nans(false)`): what bit-identical NaNs cost.
    CpuNans,
    /// wasmpool thread workers creating a new instance for every task
    /// (`reset_in_place(false)`): what resetting one in place saves.
    NewInstance,
    Processes,
    /// Worker processes creating a new instance for every task.
    ProcessesNewInstance,
    Python,
}

const MODES: [Mode; 10] = [
    Mode::Native,
    Mode::Rayon,
    Mode::Threads,
    Mode::OneWorker,
    Mode::Kept,
    Mode::CpuNans,
    Mode::NewInstance,
    Mode::Processes,
    Mode::ProcessesNewInstance,
    Mode::Python,
];

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::Sqrt { count, chunk1 } => {
                format!("sqrt × {count}, {}", if chunk1 { "chunk 1" } else { "auto chunks" })
            }
            Workload::Mandelbrot { size, max_iter } => format!("Mandelbrot {size}², {max_iter} iter., row per task"),
            Workload::Pi { tasks, samples } => format!("π: {tasks} tasks × {samples} samples"),
        }
    }

    fn tasks(self) -> u64 {
        match self {
            Workload::Sqrt { count, .. } => u64::from(count),
            Workload::Mandelbrot { size, .. } => u64::from(size),
            Workload::Pi { tasks, .. } => tasks,
        }
    }

    /// Arguments of `compare_mp.py`: workload name and sizes.
    fn python_args(self) -> Vec<String> {
        match self {
            Workload::Sqrt { count, chunk1 } => {
                vec![if chunk1 { "sqrt_chunk1" } else { "sqrt_auto" }.into(), "".into(), count.to_string()]
            }
            Workload::Mandelbrot { size, max_iter } => {
                vec!["mandelbrot".into(), "".into(), size.to_string(), size.to_string(), max_iter.to_string()]
            }
            Workload::Pi { tasks, samples } => vec!["pi".into(), "".into(), tasks.to_string(), samples.to_string()],
        }
    }
}

/// FNV-1a 64 over the result bytes, as `compare_mp.py` computes it.
fn fingerprint<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for chunk in chunks {
        for &byte in chunk {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    format!("{hash:016x}")
}

fn floats(values: &[f64]) -> String {
    let bytes: Vec<[u8; 8]> = values.iter().map(|v| v.to_le_bytes()).collect();
    fingerprint(bytes.iter().map(|b| &b[..]))
}

fn counts(values: &[u64]) -> String {
    let bytes: Vec<[u8; 8]> = values.iter().map(|v| v.to_le_bytes()).collect();
    fingerprint(bytes.iter().map(|b| &b[..]))
}

fn rows(values: &[Vec<u8>]) -> String {
    fingerprint(values.iter().map(Vec::as_slice))
}

/// Runs `workload` once natively, on one thread or with rayon.
fn native(workload: Workload, parallel: bool) -> String {
    use guest_tasks::{mandelbrot::mandel_row, math::sqrt, monte_carlo::pi_hits};
    match (workload, parallel) {
        (Workload::Sqrt { count, .. }, false) => floats(&(0..count).map(|i| sqrt(f64::from(i))).collect::<Vec<_>>()),
        (Workload::Sqrt { count, .. }, true) => {
            floats(&(0..count).into_par_iter().map(|i| sqrt(f64::from(i))).collect::<Vec<_>>())
        }
        (Workload::Mandelbrot { size, max_iter }, false) => {
            rows(&(0..size).map(|y| mandel_row(y, size, size, max_iter)).collect::<Vec<_>>())
        }
        (Workload::Mandelbrot { size, max_iter }, true) => {
            rows(&(0..size).into_par_iter().map(|y| mandel_row(y, size, size, max_iter)).collect::<Vec<_>>())
        }
        (Workload::Pi { tasks, samples }, false) => {
            counts(&(0..tasks).map(|s| pi_hits(samples, s)).collect::<Vec<_>>())
        }
        (Workload::Pi { tasks, samples }, true) => {
            counts(&(0..tasks).into_par_iter().map(|s| pi_hits(samples, s)).collect::<Vec<_>>())
        }
    }
}

/// Runs `workload` once on `pool`.
fn wasm(pool: &Pool, workload: Workload) -> String {
    match workload {
        Workload::Sqrt { count, chunk1 } => {
            let task = pool.task("sqrt").expect("sqrt").chunk_size(if chunk1 { 1 } else { 0 });
            floats(&task.map::<_, f64>((0..count).map(f64::from)).expect("sqrt map"))
        }
        Workload::Mandelbrot { size, max_iter } => {
            let task = pool.task("mandel_row").expect("mandel_row").chunk_size(1);
            rows(&task.map::<_, Vec<u8>>((0..size).map(|y| (y, size, size, max_iter))).expect("mandelbrot map"))
        }
        Workload::Pi { tasks, samples } => {
            let task = pool.task("pi_hits").expect("pi_hits").chunk_size(1);
            counts(&task.map::<_, u64>((0..tasks).map(|seed| (samples, seed))).expect("pi map"))
        }
    }
}

/// The times of `runs` runs and the first run's fingerprint, or why the
/// mode could not run.
fn measure(mode: Mode, workload: Workload, runs: usize, cores: usize) -> Result<(Vec<Duration>, String), String> {
    let timed = |run: &mut dyn FnMut() -> String| {
        let mut times = Vec::new();
        let mut first = None;
        for _ in 0..runs {
            let start = Instant::now();
            let print = run();
            times.push(start.elapsed());
            first.get_or_insert(print);
        }
        (times, first.unwrap_or_default())
    };
    match mode {
        Mode::Native => Ok(timed(&mut || native(workload, false))),
        Mode::Rayon => Ok(timed(&mut || native(workload, true))),
        Mode::Threads
        | Mode::OneWorker
        | Mode::Kept
        | Mode::CpuNans
        | Mode::NewInstance
        | Mode::Processes
        | Mode::ProcessesNewInstance => {
            let processes = matches!(mode, Mode::Processes | Mode::ProcessesNewInstance);
            let kind = if processes { WorkerKind::Processes } else { WorkerKind::Threads };
            let instances = if mode == Mode::Kept { InstanceMode::PerWorker } else { InstanceMode::FreshPerTask };
            let pool = Pool::builder()
                .module_file(guest_tasks::WASM_PATH)
                .workers(if mode == Mode::OneWorker { 1 } else { cores })
                .worker_kind(kind)
                .instance_mode(instances)
                .canonicalize_nans(mode != Mode::CpuNans)
                .reset_in_place(!matches!(mode, Mode::NewInstance | Mode::ProcessesNewInstance))
                .build()
                .map_err(|e| e.to_string())?;
            Ok(timed(&mut || wasm(&pool, workload)))
        }
        Mode::Python => python(workload, runs.min(3), cores),
    }
}

/// Runs `compare_mp.py` with the system `python3`.
fn python(workload: Workload, runs: usize, cores: usize) -> Result<(Vec<Duration>, String), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/compare_mp.py");
    let mut args = workload.python_args();
    args[1] = runs.to_string();
    args.insert(2, cores.to_string());
    let output =
        Command::new("python3").arg(script).args(&args).output().map_err(|e| format!("skipped: no python3 ({e})"))?;
    if !output.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // {"times": [a, b, …], "fingerprint": "…"}: small enough to read by hand.
    let times = text
        .split_once("[")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.split(',').filter_map(|t| t.trim().parse::<f64>().ok()).map(Duration::from_secs_f64))
        .ok_or_else(|| format!("unexpected output from compare_mp.py: {text}"))?
        .collect();
    let print = text
        .split("\"fingerprint\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| format!("unexpected output from compare_mp.py: {text}"))?;
    Ok((times, print.to_owned()))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // The value after option `name`, if given.
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let runs = value("--runs").and_then(|n| n.parse().ok()).unwrap_or(5usize).max(1);
    let only = value("--only").map(|s| s.to_lowercase());
    // Comma-separated: a mode is run if its name contains any of them.
    let mode_filter: Option<Vec<String>> =
        value("--mode").map(|s| s.to_lowercase().split(',').map(String::from).collect());
    let modes: Vec<Mode> = MODES
        .into_iter()
        .filter(|mode| {
            let name = format!("{mode:?}").to_lowercase();
            mode_filter.as_ref().is_none_or(|wanted| wanted.iter().any(|m| name.contains(m.as_str())))
        })
        .collect();
    let scale = |n: u32| if quick { n / 10 } else { n };
    let workloads = [
        Workload::Sqrt { count: scale(1_000_000), chunk1: true },
        Workload::Sqrt { count: scale(1_000_000), chunk1: false },
        Workload::Mandelbrot { size: scale(2000), max_iter: 256 },
        Workload::Pi { tasks: 200, samples: u64::from(scale(1_000_000)) },
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# wasmpool compare: {cores} cores, {runs} runs per mode (Python at most 3), median [min – max]\n");
    println!("| workload | mode | time (median [min – max]) | tasks/s | ÷ rayon | ÷ Python |");
    println!("|---|---|---|---|---|---|");
    let mut scaling = Vec::new();
    for workload in workloads {
        if only.as_ref().is_some_and(|only| !workload.name().to_lowercase().contains(only.as_str())) {
            continue;
        }
        let mut reference: Option<String> = None;
        let mut results = Vec::new();
        for &mode in &modes {
            match measure(mode, workload, runs, cores) {
                Ok((mut times, print)) => {
                    match &reference {
                        Some(expected) if *expected != print => {
                            eprintln!(
                                "{}: {mode:?} computed different results ({print} ≠ {expected})",
                                workload.name()
                            );
                            std::process::exit(1);
                        }
                        Some(_) => {}
                        None => reference = Some(print),
                    }
                    let (min, max) = (
                        *times.iter().min().unwrap_or(&Duration::ZERO),
                        *times.iter().max().unwrap_or(&Duration::ZERO),
                    );
                    results.push((mode, Ok((median(&mut times), min, max))));
                }
                Err(why) => results.push((mode, Err(why))),
            }
        }
        let time_of = |wanted: Mode| {
            results.iter().find_map(|(mode, r)| if *mode == wanted { r.as_ref().ok().map(|t| t.0) } else { None })
        };
        let (rayon, python) = (time_of(Mode::Rayon), time_of(Mode::Python));
        if let (Some(one), Some(all)) = (time_of(Mode::OneWorker), time_of(Mode::Threads)) {
            scaling.push((workload.name(), one.as_secs_f64() / all.as_secs_f64()));
        }
        for (mode, result) in &results {
            match result {
                Ok((median, min, max)) => {
                    let rate = workload.tasks() as f64 / median.as_secs_f64();
                    let ratio = |base: Option<Duration>| {
                        base.map_or("–".to_owned(), |b| format!("{:.2}", b.as_secs_f64() / median.as_secs_f64()))
                    };
                    println!(
                        "| {} | {mode:?} | {median:.2?} [{min:.2?} – {max:.2?}] | {rate:.0} | {} | {} |",
                        workload.name(),
                        ratio(rayon),
                        ratio(python)
                    );
                }
                Err(why) => println!("| {} | {mode:?} | {why} | | | |", workload.name()),
            }
        }
    }
    println!("\nRatios are throughput relative to rayon and to Python (above 1: faster).");
    println!("\n| workload | scaling: {cores} thread workers ÷ 1 worker |\n|---|---|");
    for (name, ratio) in scaling {
        println!("| {name} | {ratio:.2}× |");
    }
}
