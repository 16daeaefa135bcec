//! Building the pool `run` and `list` use, from the command line's options.

use crate::args::{GrantArgs, LimitArgs, RunArgs};
use anyhow::{Context, Result};
use std::path::Path;
use wasmpool::text::EscapedLine;
use wasmpool::{CompileLimits, OutputSink, Pool, PoolBuilder, ProcessConfig, TaskInfo, WasiConfig};

/// A pool for `run`: its workers, worker kind, seed (`seed` if given, the
/// one being resumed), limits, grants and where printed output goes. Under
/// an MPI launcher, the pool spans every rank: rank 0 gets it, the others
/// serve it and get `None`.
pub fn for_run(args: &RunArgs, seed: Option<u64>, output: OutputSink) -> Result<Option<Pool>> {
    let mut builder = Pool::builder().module_file(&args.module).output_sink(output);
    if args.grants.any() {
        builder = builder.wasi(grants(&args.grants)?);
    }
    if let Some(workers) = args.workers {
        builder = builder.workers(usize::from(workers));
    }
    if args.processes {
        builder = with_worker_processes(builder, &args.worker)?;
    }
    if let Some(seed) = seed.or(args.seed) {
        builder = builder.seed(seed);
    }
    let builder = with_limits(builder, &args.limits);
    match wasmpool::cluster::launcher() {
        Some(variable) => in_cluster(builder, args, variable),
        None => build(builder, &args.module).map(Some),
    }
}

/// Under an MPI launcher: the pool over every rank.
#[cfg(feature = "mpi")]
fn in_cluster(builder: PoolBuilder, args: &RunArgs, _variable: &str) -> Result<Option<Pool>> {
    let mut cluster = wasmpool::cluster::Cluster::join()?;
    if let Some(timeout) = args.rank_timeout {
        cluster = cluster.rank_timeout(timeout);
    }
    let (rank, size) = (cluster.rank(), cluster.size());
    let context = || format!("cannot load {}", EscapedLine(&args.module.display().to_string()));
    let pool = match builder.cluster(cluster).build_or_serve() {
        // Rank 0 says why, and its exit status is the job's: the others
        // end quietly, as a failing exit would make mpirun kill rank 0
        // before it has said anything.
        Err(wasmpool::Error::Cluster(wasmpool::cluster::ClusterError::Stopped(_))) if rank != 0 => {
            tracing::info!(rank, "rank 0 stopped the job at set-up");
            return Ok(None);
        }
        built => built.with_context(context)?,
    };
    if let Some(pool) = &pool {
        tracing::info!(ranks = size, workers = pool.workers(), seed = pool.seed(), "cluster pool ready");
    } else {
        tracing::info!(rank, "served rank 0");
    }
    Ok(pool)
}

/// Under an MPI launcher, in a build without cluster support: every rank
/// would run the whole job and write the same output, so it refuses (one
/// rank alone is harmless and runs).
#[cfg(not(feature = "mpi"))]
fn in_cluster(builder: PoolBuilder, args: &RunArgs, variable: &str) -> Result<Option<Pool>> {
    let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse::<u64>().ok());
    if size == Some(1) {
        return build(builder, &args.module).map(Some);
    }
    anyhow::bail!(
        "started by an MPI launcher ({variable} is set), but this wasmpool was built without cluster support: \
         every rank would run the whole job. Build it with the `mpi` feature (`cargo install --path cli \
         --features mpi`, which needs Open MPI's development files), or run it without mpirun or srun"
    )
}

/// The module's task list: read without running any of its code, or, for
/// a task component, as its `describe` gives it under the load deadline.
pub fn tasks(module: &Path) -> Result<Vec<TaskInfo>> {
    let context = || format!("cannot load {}", EscapedLine(&module.display().to_string()));
    Pool::builder().module_file(module).inspect().with_context(context)
}

fn build(builder: PoolBuilder, module: &Path) -> Result<Pool> {
    let context = || format!("cannot load {}", EscapedLine(&module.display().to_string()));
    let pool = builder.build().with_context(context)?;
    tracing::info!(workers = pool.workers(), kind = ?pool.worker_kind(), seed = pool.seed(), "pool ready");
    Ok(pool)
}

/// Worker processes, started as `worker` says: by default served by this
/// very program (`wasmpool worker`), so one file is all a user installs.
fn with_worker_processes(builder: PoolBuilder, worker: &crate::WorkerProgram) -> Result<PoolBuilder> {
    let config = match worker {
        crate::WorkerProgram::ThisProgram => {
            let me =
                std::env::current_exe().context("cannot find this program's own path, to start worker processes")?;
            ProcessConfig::new().executable(me).args(["worker"])
        }
        crate::WorkerProgram::Command { program, args } => ProcessConfig::new().executable(program).args(args),
        crate::WorkerProgram::Unavailable(why) => anyhow::bail!("--processes cannot start worker processes: {why}"),
    };
    Ok(builder.processes(config))
}

/// What `--allow-…` grants, as the library's WASI settings.
fn grants(args: &GrantArgs) -> Result<WasiConfig> {
    let mut config = WasiConfig::new();
    for env in &args.allow_env {
        config = match env.split_once('=') {
            Some((name, value)) => config.env(name, value),
            None => {
                let value = std::env::var(env)
                    .with_context(|| format!("--allow-env {env}: {env} is not set here (give NAME=VALUE)"))?;
                config.env(env, value)
            }
        };
    }
    for (dirs, writable) in [(&args.allow_dir, false), (&args.allow_write_dir, true)] {
        for dir in dirs {
            let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
            config = if writable { config.writable_dir(host, guest) } else { config.read_only_dir(host, guest) };
        }
    }
    if args.allow_wall_clock {
        config = config.wall_clock();
    }
    if args.allow_monotonic_clock {
        config = config.monotonic_clock();
    }
    Ok(config)
}

fn with_limits(mut builder: PoolBuilder, limits: &LimitArgs) -> PoolBuilder {
    if let Some(deadline) = limits.deadline {
        builder = builder.deadline(deadline);
    }
    if let Some(bytes) = limits.max_memory {
        builder = builder.max_memory(bytes);
    }
    if let Some(fuel) = limits.fuel {
        builder = builder.fuel(fuel);
    }
    if let Some(bytes) = limits.max_stack {
        builder = builder.max_stack(bytes);
    }
    if let Some(bytes) = limits.max_output {
        builder = builder.max_output(bytes);
    }
    if let Some(elements) = limits.max_table_elements {
        builder = builder.max_table_elements(elements);
    }
    if let Some(bytes) = limits.max_message {
        builder = builder.max_message(bytes);
    }
    if let Some(deadline) = limits.load_deadline {
        builder = builder.load_deadline(deadline);
    }
    if let Some(bytes) = limits.max_module_size {
        builder = builder.compile_limits(CompileLimits { max_module_bytes: bytes, ..CompileLimits::default() });
    }
    builder
}
