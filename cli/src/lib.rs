//! The `wasmpool` command as a function: [`run_command`] parses a command
//! line and runs it, returning the exit status. The `wasmpool` executable
//! (`src/main.rs`) is this function over its own arguments; the Python
//! package's console script calls it inside the extension module, so that
//! `pip install wasmpool` gives the command without a second executable.
//!
//! This crate is the command, not a library to build on: its errors are
//! the command's messages (`anyhow`), printed by [`run_command`]. The
//! library is the `wasmpool` crate. See `docs/cli.md`.

mod args;
mod input;
mod journal;
mod list;
mod new;
mod pool;
mod progress;
mod python_tasks;
mod records;
mod run;

use args::{Cli, Command};
use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

/// Exit status: every line succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: some lines failed (the others ran).
pub const EXIT_SOME_FAILED: u8 = 1;
/// Exit status: the command could not run (bad usage, module, task or file).
pub const EXIT_CANNOT_RUN: u8 = 2;

/// How `run --processes` starts its worker processes.
#[derive(Clone, Debug, Default)]
pub enum WorkerProgram {
    /// This very program with the argument `worker` (`wasmpool worker`):
    /// the executable's own choice, so one file is all a user installs.
    #[default]
    ThisProgram,
    /// Another program and its arguments, which must serve as a
    /// `wasmpool-worker` does: the Python package's interpreter running
    /// the extension's worker.
    Command {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<OsString>,
    },
    /// None can be started, for this reason: `--processes` fails with it.
    Unavailable(String),
}

/// Runs the command line `args` (the program's name first, as
/// `std::env::args_os` gives it) and returns its exit status: 0, 1 if some
/// inputs failed, 2 if the command could not run (its error printed on
/// stderr), as clap says for `--help`, `--version` and bad usage.
/// `wasmpool worker` serves the host on stdin and stdout (it is how
/// [`WorkerProgram::ThisProgram`] starts its workers).
pub fn run_command(args: impl IntoIterator<Item = OsString>, worker: WorkerProgram) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version on stdout (status 0), bad usage on stderr.
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(EXIT_CANNOT_RUN);
        }
    };
    if let Command::Worker = cli.command {
        // Before anything else: stdout is the protocol's channel.
        let code = wasmpool::worker_main();
        // `ExitCode` keeps its number to itself: find it by comparison.
        return (0..=u8::MAX).find(|&n| std::process::ExitCode::from(n) == code).unwrap_or(1);
    }
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(mut args) => {
            args.worker = worker;
            run::run(*args).map(|report| if report.failed == 0 { EXIT_OK } else { EXIT_SOME_FAILED })
        }
        Command::List(args) => list::list(&args).map(|()| EXIT_OK),
        Command::New(args) => new::new(&args).map(|()| EXIT_OK),
        Command::Build(args) => build(&args).map(|()| EXIT_OK),
        Command::Cache(args) => cache(&args).map(|()| EXIT_OK),
        Command::Worker => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wasmpool: error: {error:#}");
            EXIT_CANNOT_RUN
        }
    }
}

/// `wasmpool build`: the component's path on stdout.
fn build(args: &args::BuildArgs) -> anyhow::Result<()> {
    if !python_tasks::is_python(&args.source) {
        anyhow::bail!("{} is not a Python module (.py)", python_tasks::shown(&args.source));
    }
    let out = args.output.clone().unwrap_or_else(|| python_tasks::default_output(&args.source));
    let built = python_tasks::build(&args.source, Some(&out), &args.packages)?;
    println!("{}", python_tasks::shown(&built));
    Ok(())
}

/// `wasmpool cache`: its entries, most recently used first, or `--clear`.
fn cache(args: &args::CacheArgs) -> anyhow::Result<()> {
    let Some(dir) = wasmpool::default_cache_dir() else {
        anyhow::bail!("no cache folder is known (XDG_CACHE_HOME, LOCALAPPDATA, HOME are unset or relative)");
    };
    let shown = wasmpool::text::escape_line(&dir.display().to_string());
    if args.clear {
        let (files, bytes) = wasmpool::clear_cache(&dir)?;
        println!("removed {files} entries ({}) from {shown}", megabytes(bytes));
        return Ok(());
    }
    let entries = wasmpool::cache_entries(&dir)?;
    println!("{shown}");
    let now = std::time::SystemTime::now();
    for entry in &entries {
        let kind = match entry.kind {
            wasmpool::CacheEntryKind::Compiled => "compiled",
            wasmpool::CacheEntryKind::CompiledFunctions => "functions",
            _ => "python build",
        };
        let age = now.duration_since(entry.last_used).unwrap_or_default();
        let age = humantime::format_duration(std::time::Duration::from_secs(age.as_secs()));
        let name = entry.path.strip_prefix(&dir).unwrap_or(&entry.path).display().to_string();
        println!("  {:>10}  {kind:<12}  used {age} ago  {}", megabytes(entry.size), wasmpool::text::escape_line(&name));
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    println!("{} entries, {} in all", entries.len(), megabytes(total));
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Logs to stderr: warnings by default, more with each `-v`; `RUST_LOG`
/// (e.g. `RUST_LOG=wasmpool=debug`) takes precedence.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A second command in one process (the Python package's console
        // entry called twice) keeps the first one's logger.
        .try_init()
        .ok();
}
