//! Building the pool `run` and `list` use, from the command line's options.

use crate::args::RunArgs;
use anyhow::{Context, Result};
use std::path::Path;
use wasmpool::text::EscapedLine;
use wasmpool::{DirGrant, OutputSink, Pool, PoolBuilder, ProcessConfig, Settings, TaskInfo};

/// A pool for `run`: its workers, worker kind, seed (`seed` if given, the
/// one being resumed), limits, grants and where printed output goes. Under
/// an MPI launcher, the pool spans every rank: rank 0 gets it, the others
/// serve it and get `None`.
pub fn for_run(args: &RunArgs, seed: Option<u64>, output: OutputSink) -> Result<Option<Pool>> {
    let settings = settings(args, seed);
    // Named as on the command line (the library names the field).
    settings.validate().map_err(|invalid| {
        let option = invalid.setting.replace('_', "-");
        anyhow::anyhow!("--{option}: {}", EscapedLine(&invalid.reason))
    })?;
    let mut builder = Pool::builder().module_file(&args.module).output_sink(output);
    if settings.processes {
        builder = with_worker_processes(builder, &args.worker)?;
    }
    let builder = builder.settings(&settings);
    match wasmpool::cluster::launcher() {
        Some(variable) => in_cluster(builder, args, variable),
        None => build(builder, &args.module).map(Some),
    }
}

/// The library's settings for `run`'s options: the one place they are
/// mapped. `seed`, if given, is the run's seed (`--seed`, or the one being
/// resumed).
pub fn settings(args: &RunArgs, seed: Option<u64>) -> Settings {
    let (pool, limits, grants) = (&args.pool, &args.limits, &args.grants);
    let defaults = Settings::default();
    let mut settings = Settings::default();
    settings.workers = pool.workers.map(usize::from);
    settings.processes = pool.processes;
    settings.max_retries = pool.max_retries.unwrap_or(defaults.max_retries);
    settings.seed = seed.or(pool.seed);
    settings.chunk_size = pool.chunk_size.map(|n| n as usize);
    settings.interruptible = pool.interruptible;
    settings.fresh_state = pool.fresh_state;
    settings.canonicalize_nans = pool.canonicalize_nans;
    settings.cache = pool.cache;
    settings.cache_dir = pool.cache_dir.clone();
    settings.initializer = pool.initializer.clone();
    settings.initargs = pool.initargs.clone();
    settings.deadline = limits.deadline;
    settings.load_deadline = limits.load_deadline.unwrap_or(defaults.load_deadline);
    settings.fuel = limits.fuel;
    settings.max_memory = limits.max_memory.unwrap_or(defaults.max_memory);
    settings.max_stack = limits.max_stack.unwrap_or(defaults.max_stack);
    settings.max_output = limits.max_output.unwrap_or(defaults.max_output);
    settings.max_table_elements = limits.max_table_elements.unwrap_or(defaults.max_table_elements);
    settings.max_message = limits.max_message.unwrap_or(defaults.max_message);
    settings.max_module_size = limits.max_module_size.unwrap_or(defaults.max_module_size);
    settings.allow_env = grants.allow_env.clone();
    settings.allow_dir = grants.allow_dir.iter().map(|spec| DirGrant::parse(spec)).collect();
    settings.allow_write_dir = grants.allow_write_dir.iter().map(|spec| DirGrant::parse(spec)).collect();
    settings.allow_wall_clock = grants.allow_wall_clock;
    settings.allow_monotonic_clock = grants.allow_monotonic_clock;
    settings
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

/// Refuses a launch whose processes could never form one job, before
/// anything is read or built: [`wasmpool::cluster::check_launch`].
#[cfg(feature = "mpi")]
pub fn check_launch() -> Result<()> {
    Ok(wasmpool::cluster::check_launch()?)
}

/// In a build without cluster support, refuses a launch of several
/// processes, which would each run the whole job and write the same output
/// (one rank alone is harmless and runs).
#[cfg(not(feature = "mpi"))]
pub fn check_launch() -> Result<()> {
    let Some(variable) = wasmpool::cluster::launcher() else { return Ok(()) };
    if wasmpool::cluster::launched_size().is_some_and(|launched| launched.processes == 1) {
        return Ok(());
    }
    anyhow::bail!(
        "started by an MPI launcher ({variable} is set), but this wasmpool was built without cluster support: \
         every rank would run the whole job. Build it with the `mpi` feature (`cargo install --path cli \
         --features mpi`, which needs Open MPI's development files), or run it without mpirun or srun"
    )
}

/// Under an MPI launcher, in a build without cluster support: only a
/// launch of one process gets here ([`check_launch`] refused the others).
#[cfg(not(feature = "mpi"))]
fn in_cluster(builder: PoolBuilder, args: &RunArgs, _variable: &str) -> Result<Option<Pool>> {
    check_launch()?;
    build(builder, &args.module).map(Some)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, GRANTS_HEADING, LIMITS_HEADING, POOL_HEADING};
    use clap::{CommandFactory, Parser};
    use std::collections::BTreeSet;

    fn run_args(options: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["wasmpool", "run", "m.wasm", "t"].iter().chain(options)).unwrap();
        let Command::Run(run) = cli.command else { panic!("not run") };
        *run
    }

    #[test]
    fn every_setting_is_an_option_of_run_under_its_name() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").unwrap();
        let headings = [POOL_HEADING, LIMITS_HEADING, GRANTS_HEADING];
        let options: BTreeSet<String> = run
            .get_arguments()
            .filter(|arg| arg.get_help_heading().is_some_and(|h| headings.contains(&h)))
            .map(|arg| arg.get_long().unwrap().replace('-', "_"))
            .collect();
        let names: BTreeSet<String> = wasmpool::SETTING_NAMES.iter().map(|name| name.to_string()).collect();
        assert_eq!(options, names);
    }

    #[test]
    fn no_option_gives_the_libraries_defaults() {
        assert_eq!(settings(&run_args(&[]), None), Settings::default());
    }

    #[test]
    fn every_option_reaches_its_setting() {
        let options = "-w 3 --processes --max-retries 5 --chunk-size 4 --seed 9 --interruptible true \
            --fresh-state false --canonicalize-nans false --cache false --cache-dir d --initializer init \
            --initargs [1] --deadline 2s --load-deadline 3s --fuel 10 --max-memory 1MiB --max-stack 1MiB \
            --max-output 1MiB --max-table-elements 10 --max-message 1KiB --max-module-size 1MiB \
            --allow-env A=1 --allow-dir x --allow-write-dir y::/out --allow-wall-clock --allow-monotonic-clock";
        let args = run_args(&options.split_whitespace().collect::<Vec<_>>());
        let given = serde_json::to_value(settings(&args, None)).unwrap();
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        for name in wasmpool::SETTING_NAMES {
            assert_ne!(given[name], defaults[name], "--{} did not reach the setting", name.replace('_', "-"));
        }
        assert_eq!(given["allow_write_dir"], serde_json::json!([["y", "/out"]]));
        assert_eq!(settings(&args, Some(11)).seed, Some(11), "a resumed run's seed comes first");
    }
}
