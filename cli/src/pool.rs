//! Building the pool `run` and `list` use, from the command line's options.

use crate::args::{LimitArgs, RunArgs};
use anyhow::{Context, Result};
use std::path::Path;
use wasmpool::text::EscapedLine;
use wasmpool::{CompileLimits, Pool, PoolBuilder, TaskInfo, WorkerKind};

/// A pool for `run`: its workers, worker kind, seed and limits.
pub fn for_run(args: &RunArgs) -> Result<Pool> {
    let mut builder = Pool::builder().module_file(&args.module);
    if let Some(workers) = args.workers {
        builder = builder.workers(usize::from(workers));
    }
    if args.processes {
        builder = self_as_worker(builder.worker_kind(WorkerKind::Processes))?;
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    build(with_limits(builder, &args.limits), &args.module)
}

/// The module's task list, read without running any of its code.
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

/// This very program serves as the worker executable (`wasmpool worker`),
/// so one file is all a user installs.
fn self_as_worker(builder: PoolBuilder) -> Result<PoolBuilder> {
    let me = std::env::current_exe().context("cannot find this program's own path, to start worker processes")?;
    Ok(builder.worker_executable(me).worker_args(["worker"]))
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
