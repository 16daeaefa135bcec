//! The command line: every command, option and its help text.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Run WebAssembly tasks in parallel, sandboxed and reproducibly.
///
/// A task module is one Wasm file holding every task (build one with the
/// wasmpool-guest SDK; `wasmpool new` starts a crate). `wasmpool run` feeds
/// it JSON lines and writes one JSON result per line.
#[derive(Debug, Parser)]
#[command(name = "wasmpool", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace
    /// (RUST_LOG overrides it).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task over JSON lines: one input per line in, one result per line out.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// List a module's tasks with their argument and result types.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Create a ready-to-build task crate with a sample task.
    #[command(after_help = NEW_EXAMPLES)]
    New(NewArgs),
    /// Build a Python module of tasks (tasks.py) into one task component.
    #[command(after_help = BUILD_EXAMPLES)]
    Build(BuildArgs),
    /// Show the cache of compiled modules and Python builds, or clear it.
    #[command(after_help = CACHE_EXAMPLES)]
    Cache(CacheArgs),
    /// Serve as a worker process of `run --processes` (started by wasmpool
    /// itself; it speaks a binary protocol on stdin and stdout).
    #[command(hide = true)]
    Worker,
}

const CACHE_EXAMPLES: &str = "\
Pools keep compiled code in the user's cache folder (XDG_CACHE_HOME,
LOCALAPPDATA or ~/.cache, then wasmpool/), up to 1 GiB (WASMPOOL_CACHE_LIMIT_MB
sets another limit), and builds of Python modules in its python/ folder, the
16 most recently used; the least recently used go first.

Examples:
  wasmpool cache
  wasmpool cache --clear
";

const BUILD_EXAMPLES: &str = "\
Each public function of the module is a task. The build needs Python 3 with
componentize-py (python3 -m pip install componentize-py; WASMPOOL_PYTHON names
another interpreter) and is cached: `run` and `list` take tasks.py as well and
build it only when it changed.

Examples:
  wasmpool build tasks.py -o tasks.wasm
  seq 0 9 | wasmpool run tasks.py sqrt
";

const RUN_EXAMPLES: &str = "\
Examples:
  # square roots, one number per line
  seq 0 99 | wasmpool run guest_tasks.wasm sqrt

  # several arguments: a JSON array per line; results in input order
  wasmpool run tasks.wasm add -i pairs.jsonl -o sums.jsonl

  # keep going past failing lines (each becomes an {\"error\": …} line),
  # 4 worker processes, at most 2 s and 64 MiB per task
  wasmpool run tasks.wasm parse -i in.jsonl --on-error continue \\
      --processes -w 4 --deadline 2s --max-memory 64MiB

  # on every core of a cluster, and again after a crash or a walltime kill
  mpirun -np 64 wasmpool run tasks.wasm simulate -i params.jsonl -o out.jsonl --seed 7
  mpirun -np 64 wasmpool run tasks.wasm simulate -i params.jsonl -o out.jsonl --seed 7 --resume

Exit status: 0 every line succeeded, 1 some lines failed, 2 could not run,
75 a cluster rank was lost (run again with --resume).";

const LIST_EXAMPLES: &str = "\
Examples:
  wasmpool list guest_tasks.wasm
  wasmpool list guest_tasks.wasm --json";

const NEW_EXAMPLES: &str = "\
Examples:
  wasmpool new my_tasks
  cd my_tasks
  cargo build --release --target wasm32-wasip1
  echo 3 | wasmpool run target/wasm32-wasip1/release/my_tasks.wasm square";

/// `wasmpool run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task module (a .wasm file, or a .py module of tasks written in
    /// Python, built first).
    pub module: PathBuf,

    /// The task to run on every line.
    pub task: String,

    /// With a .py module: a pure-Python package installed in the building
    /// Python's environment, carried into the component for the tasks to
    /// import (repeatable; native extensions are refused).
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,

    /// Read inputs from this file instead of stdin (`-`: stdin). One JSON
    /// value per line: the argument itself for a task of one argument, an
    /// array for several, `null` or `[]` for none. Blank lines are skipped.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Write results to this file instead of stdout (`-`: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Write results as they complete, each as {"line": N, "result": …},
    /// instead of plain results in input order.
    #[arg(long)]
    pub unordered: bool,

    /// What to do when a line fails: stop at once, or write an
    /// {"error": …} line for it and go on.
    #[arg(long, value_enum, default_value_t = OnError::Stop, value_name = "POLICY")]
    pub on_error: OnError,

    /// Don't show the progress bar and the summary.
    #[arg(short, long)]
    pub quiet: bool,

    /// Go on with a run that was cut short (crash, kill, lost rank,
    /// walltime): keep the results its journal (`OUTPUT.journal`, written
    /// beside every `-o FILE`) vouches for, run only the other lines, and
    /// finish the file with each line's result exactly once. Needs the
    /// input as a file (`-i FILE`). Refused if the journal was made with
    /// another module, task, seed, input, settings, --on-error, --printed
    /// or grants.
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// Under mpirun or srun: how long a rank may stay silent (hung,
    /// stopped, cut off) before the job stops with status 75, its finished
    /// results saved for --resume [default: 10s].
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub rank_timeout: Option<Duration>,

    /// Where what a task prints (`println!`, `eprintln!`) goes: on stderr,
    /// each line marked with its input's line number; into the output, as
    /// "stdout" and "stderr" fields of each line's record
    /// ({"result": …, "stdout": …, "stderr": …}); or nowhere.
    #[arg(long, value_enum, default_value_t = Printed::Stderr, value_name = "WHERE")]
    pub printed: Printed,

    /// How the pool runs the tasks.
    #[command(flatten)]
    pub pool: PoolArgs,

    /// The sandbox's limits for every task.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// What tasks may use beyond computing.
    #[command(flatten)]
    pub grants: GrantArgs,

    /// How `--processes` starts its workers: set by [`crate::run_command`]'s
    /// caller, not on the command line.
    #[arg(skip)]
    pub worker: crate::WorkerProgram,
}

/// The help headings of `run`'s options that are the pool's settings.
pub const POOL_HEADING: &str = "Pool";
/// See [`POOL_HEADING`].
pub const LIMITS_HEADING: &str = "Sandbox limits (per task)";
/// See [`POOL_HEADING`].
pub const GRANTS_HEADING: &str = "Capabilities (tasks built for wasm32-wasip1; none by default)";

/// How `run`'s pool runs the tasks: with [`LimitArgs`] and [`GrantArgs`],
/// every field of `wasmpool::Settings`, under its name (`crate::pool`
/// maps them; a test checks that none is missing).
#[derive(Debug, Args)]
#[command(next_help_heading = POOL_HEADING)]
pub struct PoolArgs {
    /// Number of workers [default: the number of CPUs].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// Run each worker in a process of its own (a crashed one is replaced
    /// and its task retried) instead of a thread.
    #[arg(long)]
    pub processes: bool,

    /// With --processes: how many times a line whose worker process died
    /// is run again [default: 2].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Inputs sent to a worker at a time [default: from a file, about four
    /// chunks per worker, at most 64; from stdin, 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: Option<u32>,

    /// The pool's seed: every task's random numbers derive from it and its
    /// line's index [default: random, printed in the summary].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Thread workers: compile the checks that let a running task be
    /// stopped [default: only with --deadline].
    #[arg(long, value_name = "BOOL")]
    pub interruptible: Option<bool>,

    /// Start every line from the module's initial state; `false` keeps one
    /// instance per worker for all its lines (module globals carry over).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub fresh_state: bool,

    /// Give every NaN the same bits on every CPU (`false` skips the
    /// load-time rewrite that does it).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub canonicalize_nans: bool,

    /// Keep compiled code in the cache (`false`: compile afresh; builds of a
    /// tasks.py keep their own cache either way).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub cache: bool,

    /// The cache's folder [default: wasmpool/ in the user's cache folder].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// A task run on every new instance before it serves lines (as
    /// multiprocessing's initializer).
    #[arg(long, value_name = "TASK")]
    pub initializer: Option<String>,

    /// The initializer's arguments, as a JSON array.
    #[arg(long, value_name = "JSON", default_value = "[]", requires = "initializer")]
    pub initargs: String,
}

/// Where `run` puts what tasks print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Printed {
    /// On stderr, each line as `[line N] text` (`[line N stderr] text`).
    Stderr,
    /// In each line's output record.
    Records,
    /// Nowhere.
    Discard,
}

impl Printed {
    /// Its name on the command line (`--printed NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Printed::Stderr => "stderr",
            Printed::Records => "records",
            Printed::Discard => "discard",
        }
    }
}

/// The capabilities `run` can grant tasks built for `wasm32-wasip1`
/// (WASI); nothing is granted by default. Mirrors `wasmpool::WasiConfig`.
#[derive(Debug, Args)]
#[command(next_help_heading = GRANTS_HEADING)]
pub struct GrantArgs {
    /// An environment variable: NAME=VALUE, or NAME for this shell's value.
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub allow_env: Vec<String>,

    /// Read access to a folder, seen by tasks as GUEST (default: the same
    /// path as given).
    #[arg(long, value_name = "DIR[::GUEST]")]
    pub allow_dir: Vec<String>,

    /// Read and write access to a folder, seen by tasks as GUEST (default:
    /// the same path as given).
    #[arg(long, value_name = "DIR[::GUEST]")]
    pub allow_write_dir: Vec<String>,

    /// The wall clock (the date and time: `SystemTime::now`).
    #[arg(long)]
    pub allow_wall_clock: bool,

    /// The monotonic clock (`Instant::now`), and sleeping.
    #[arg(long)]
    pub allow_monotonic_clock: bool,
}

/// One `--allow-dir` or `--allow-write-dir` grant, as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirGrant<'a> {
    /// The host's folder.
    pub host: &'a str,
    /// Where tasks see it.
    pub guest: &'a str,
    /// Whether tasks may write in it (`--allow-write-dir`).
    pub writable: bool,
}

impl<'a> DirGrant<'a> {
    /// `DIR::GUEST`, or `DIR` alone, seen by tasks at the same path (as
    /// `pool.rs` reads it for the library).
    pub fn parse(spec: &'a str, writable: bool) -> DirGrant<'a> {
        let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
        DirGrant { host, guest, writable }
    }
}

impl GrantArgs {
    /// Every folder granted: the `--allow-dir` ones, then the
    /// `--allow-write-dir` ones, each in the order given.
    pub fn dirs(&self) -> impl Iterator<Item = DirGrant<'_>> {
        let read = self.allow_dir.iter().map(|spec| DirGrant::parse(spec, false));
        let write = self.allow_write_dir.iter().map(|spec| DirGrant::parse(spec, true));
        read.chain(write)
    }
}

/// What `run` does with a failing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// Report the first failing line on stderr and stop (exit status 1).
    Stop,
    /// Write {"error": {"line": N, "input": …, "kind": …, "message": …}}
    /// for it and go on (exit status 1 at the end).
    Continue,
}

impl OnError {
    /// Its name on the command line (`--on-error NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Stop => "stop",
            OnError::Continue => "continue",
        }
    }
}

/// The sandbox limits `run` can set.
#[derive(Debug, Args)]
#[command(next_help_heading = LIMITS_HEADING)]
pub struct LimitArgs {
    /// Wall time, e.g. `500ms`, `2s`, `1m` [default: none].
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub deadline: Option<Duration>,

    /// Linear memory, e.g. `64MiB` [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_memory: Option<usize>,

    /// Wasm instructions' fuel [default: unmetered].
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Wasm stack, e.g. `1MiB` [default: 512KiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_stack: Option<usize>,

    /// Size of one result, e.g. `16MiB` [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_output: Option<usize>,

    /// Elements of each table [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<usize>,

    /// One message a task sends while it runs (the command drops them,
    /// but a task past this size still fails) [default: 1MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_message: Option<usize>,

    /// The module file itself: a larger one is refused before it is
    /// compiled [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_module_size: Option<usize>,

    /// The module's own set-up code (start function, init), run once as it
    /// loads: past this it is refused [default: 5s].
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    pub load_deadline: Option<Duration>,
}

/// `wasmpool build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Python module of tasks (a .py file).
    pub source: PathBuf,

    /// Where to write the component [default: the module's name with .wasm].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With a .py module: a pure-Python package installed in the building
    /// Python's environment, carried into the component for the tasks to
    /// import (repeatable; native extensions are refused).
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
}

/// `wasmpool list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The task module (a .wasm file, or a .py module of tasks written in
    /// Python, built first).
    pub module: PathBuf,

    /// One JSON object per task instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With a .py module: a pure-Python package installed in the building
    /// Python's environment, carried into the component for the tasks to
    /// import (repeatable; native extensions are refused).
    #[arg(long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
}

/// `wasmpool cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Remove every entry (the folder and anything else in it stay).
    #[arg(long)]
    pub clear: bool,
}

/// `wasmpool new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name; also the name of the folder created for it.
    pub name: String,

    /// Create the crate in this folder instead of `./NAME`.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// Depend on the guest SDK in this folder (a wasmpool checkout's
    /// `guest-sdk`) [default: the checkout this wasmpool was built from,
    /// if it is still there, else the published crate].
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// A byte size: `4096`, `64KiB`, `64MiB`, `1GiB` (also `KB`, `MB`, `GB`).
fn parse_bytes(text: &str) -> Result<usize, String> {
    let bytes = parse_size::Config::new().with_binary().parse_size(text).map_err(|e| format!("{e}"))?;
    usize::try_from(bytes).map_err(|_| format!("{text} is more than this machine can address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn run_takes_limits_and_a_policy() {
        let cli = Cli::try_parse_from([
            "wasmpool",
            "run",
            "m.wasm",
            "sqrt",
            "--deadline",
            "1.5s",
            "--max-memory",
            "64MiB",
            "--on-error",
            "continue",
            "-w",
            "3",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else { panic!("not run") };
        assert_eq!(run.limits.deadline, Some(Duration::from_millis(1500)));
        assert_eq!(run.limits.max_memory, Some(64 << 20));
        assert_eq!(run.on_error, OnError::Continue);
        assert_eq!(run.pool.workers, Some(3));
        assert!(Cli::try_parse_from(["wasmpool", "run", "m.wasm", "t", "-w", "0"]).is_err());
    }

    #[test]
    fn folder_grants_read_as_the_pool_reads_them() {
        let cli = Cli::try_parse_from([
            "wasmpool",
            "run",
            "m.wasm",
            "t",
            "--allow-write-dir",
            "out::/results",
            "--allow-dir",
            "data",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else { panic!("not run") };
        let dirs: Vec<DirGrant<'_>> = run.grants.dirs().collect();
        assert_eq!(
            dirs,
            [
                DirGrant { host: "data", guest: "data", writable: false },
                DirGrant { host: "out", guest: "/results", writable: true },
            ]
        );
    }

    #[test]
    fn policies_are_named_as_on_the_command_line() {
        for printed in Printed::value_variants() {
            let name = printed.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(name.as_deref(), Some(printed.as_str()));
        }
        for policy in OnError::value_variants() {
            let name = policy.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(name.as_deref(), Some(policy.as_str()));
        }
    }
}
