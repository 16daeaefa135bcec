//! `wasmpool run`: a task over JSON lines, in parallel, with bounded memory.
//!
//! Lines are pulled from the input only as workers free up (the pool's
//! streaming map), each result is written as soon as its turn comes, and
//! only the lines in flight are kept: millions of lines stream through in
//! the memory of a few thousand. Under an MPI launcher the pool spans every
//! rank; rank 0 reads, schedules and writes, the others serve it. Output
//! to a file is journaled (see `journal`), so a run cut short can resume.

use crate::args::{GrantArgs, OnError, Printed, RunArgs};
use crate::input::{Line, Lines, Pending, Scan, Source};
use crate::journal::checked::{self, Destination};
use crate::journal::{self, Done, Identity, Journal, hex};
use crate::progress::{Progress, Report};
use crate::python_tasks::shown;
use crate::records::{LineError, error_line, result_line};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufWriter, ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmpool::text::EscapedLine;
use wasmpool::{ChunkSize, JsonTask, OutputSink, TaskError, TaskFailure, TaskOutput, TaskRef};

/// What tasks printed, by input index, from the pool's output sink until
/// `Results::take` writes the input's result (a moment later, on the same
/// thread): at most one input's at a time.
type PrintedByIndex = Arc<Mutex<HashMap<usize, TaskOutput>>>;

/// Inputs per job when reading stdin, whose length is unknown: enough to
/// spread the cost of a job over many short tasks, few enough that long
/// tasks still balance over the workers.
const STDIN_CHUNK: usize = 16;

/// Most inputs per job from a file. Larger chunks were slower: with 1024,
/// a million `sqrt` lines took 5.4 s against 4.7 s with 64, as the reader,
/// the writer and the workers take turns rather than overlap
/// (docs/benchmarks.md).
const FILE_CHUNK_MAX: usize = 64;

/// Whether to go on with the next result.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// Where results go: a stream (stdout, a pipe), or a file with its journal.
enum Output {
    Stream(Box<dyn Write>),
    Journaled(Journal),
}

impl Output {
    fn write(&mut self, index: usize, line: &str) -> std::io::Result<()> {
        match self {
            Output::Stream(out) => writeln!(out, "{line}"),
            Output::Journaled(journal) => journal.record(index, line),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stream(out) => out.flush(),
            Output::Journaled(journal) => journal.finish(),
        }
    }
}

/// Runs the task over every line; the report's `failed` decides the exit
/// status. Errors are what stops the run as a whole (exit status 2).
pub fn run(mut args: RunArgs) -> Result<Report> {
    // A launch whose processes can never form one job (an srun step
    // without an MPI plugin, or any launch of several processes in a build
    // without cluster support) is refused before anything is read or built.
    crate::pool::check_launch()?;
    // Tasks written in Python: the component built from them (cached). In
    // a cluster only rank 0 builds it: the other ranks run the bytes rank 0
    // sends them, and need neither Python nor componentize-py.
    if !is_follower() {
        args.module = crate::python_tasks::resolve(&args.module, &args.packages)?;
    }
    let source = Source::new(args.input.as_deref());
    let output_file = args.output.as_deref().filter(|path| *path != Path::new("-"));
    let printed = PrintedByIndex::default();
    let Some(pool) = start_pool(&args, &source, output_file, sink(args.printed, &printed))? else {
        return Ok(Report::default());
    };
    // Before the output is created: a task the module lacks leaves no file.
    let task = pool.task(&args.task)?;
    let scan = source.scan(output_file.is_some())?;
    let identity = identity_of(&args, pool.seed(), scan.as_ref())?;
    let inputs = scan.as_ref().map(|scan| scan.lines);
    let (output, done) = open_output(output_file, &source, &identity, &args, inputs)?;
    let resumed = done.len();
    let count = inputs.map(|n| n.saturating_sub(resumed));
    let task = json_task(task, pool.workers(), &args, count)?;

    let pending = Pending::default();
    let max_len = crate::pool::settings(&args, None).max_memory;
    let lines = Lines::new(source.open()?, count, max_len, pending.clone(), done);
    let read_error = lines.error_slot();
    let started = Instant::now();
    let mut results = Results {
        args: &args,
        pending,
        printed,
        output,
        progress: Progress::new(count, args.quiet, output_file.is_none() && std::io::stdout().is_terminal()),
        report: Report { seed: pool.seed(), resumed: resumed as u64, ..Report::default() },
        closed: false,
        lost: None,
    };
    if args.unordered {
        for (index, result) in task.imap_unordered_indexed(lines)? {
            if results.take(index, result)? == Flow::Stop {
                break;
            }
        }
    } else {
        for (n, result) in task.imap_indexed(lines)?.enumerate() {
            if results.take(resumed + n, result)? == Flow::Stop {
                break;
            }
        }
    }
    results.finish()?;
    let Results { mut report, lost, .. } = results;
    if let Some(error) = lost {
        eprintln!(
            "wasmpool: {error}\nwasmpool: {} results are saved; run the same command with --resume to finish",
            resumed as u64 + report.lines
        );
        pool.abort_cluster(wasmpool::cluster::EXIT_RANK_LOST);
    }
    if let Some(error) = read_error.borrow_mut().take() {
        return Err(error).with_context(|| source.describe());
    }
    report.wall = started.elapsed();
    report.stats = pool.stats();
    report.ranks = pool.cluster_stats();
    if !args.quiet {
        eprintln!("{}", report.summary());
    }
    Ok(report)
}

/// Whether this process is a rank other than 0 of a cluster: it serves
/// rank 0, which has the module, the input and the output.
fn is_follower() -> bool {
    wasmpool::cluster::launcher().is_some() && wasmpool::cluster::launched_rank().is_some_and(|rank| rank != 0)
}

/// The pool for this run (`None` on a rank other than 0 of a cluster, once
/// it has served rank 0). Resuming an output file reuses its seed, and
/// needs an input it can check (a file); only rank 0 (or a run on one
/// machine) has the input and the output, and the other ranks get the
/// seed from rank 0.
fn start_pool(
    args: &RunArgs,
    source: &Source,
    output_file: Option<&Path>,
    output: OutputSink,
) -> Result<Option<wasmpool::Pool>> {
    let follower = is_follower();
    let resumed_seed = match output_file {
        Some(path) if args.resume && !follower => {
            source.check_resumable()?;
            Some(journal::identity(path)?.seed)
        }
        _ => None,
    };
    crate::pool::for_run(args, args.pool.seed.or(resumed_seed), output)
}

/// What made this run's results, for its journal: everything that changes
/// the bytes written.
fn identity_of(args: &RunArgs, seed: u64, scan: Option<&Scan>) -> Result<Identity> {
    Ok(Identity {
        module_sha256: module_sha256(&args.module)?,
        task: args.task.clone(),
        seed,
        settings: format!(
            "{}, unordered: {}",
            crate::pool::settings(args, Some(seed)).results_identity(),
            args.unordered
        ),
        printed: args.printed.as_str().to_owned(),
        on_error: args.on_error.as_str().to_owned(),
        grants: grants_identity(&args.grants),
        input: scan.and_then(Scan::as_input_file),
    })
}

/// The grants as a journal records them: each folder with its mode, its
/// host path (canonical, so `./data` and `data` are one) and the path tasks
/// see; each environment variable by name with a hash of its value (the
/// journal is no place for a secret); the clocks. "none" for none.
fn grants_identity(grants: &GrantArgs) -> String {
    let mut parts: Vec<String> = grants
        .dirs()
        .map(|dir| {
            let host =
                std::fs::canonicalize(dir.host).map_or_else(|_| dir.host.to_owned(), |p| p.display().to_string());
            format!("{} {host}::{}", if dir.writable { "write" } else { "read" }, dir.guest)
        })
        .collect();
    parts.extend(grants.allow_env.iter().map(String::as_str).map(env_identity));
    if grants.allow_wall_clock {
        parts.push("wall clock".to_owned());
    }
    if grants.allow_monotonic_clock {
        parts.push("monotonic clock".to_owned());
    }
    if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
}

/// `env NAME=sha256:…` (the first 16 hex digits of its value's SHA-256) for
/// `--allow-env NAME=VALUE`, or for `NAME` with this shell's value.
fn env_identity(spec: &str) -> String {
    let (name, value) = match spec.split_once('=') {
        Some((name, value)) => (name, Some(value.as_bytes().to_vec())),
        None => (spec, std::env::var_os(spec).map(|value| value.into_encoded_bytes())),
    };
    match value {
        Some(value) => format!("env {name}=sha256:{}", &hex(&Sha256::digest(&value))[..16]),
        None => format!("env {name} unset"),
    }
}

/// The pool's output sink: what each task printed, kept for its result.
fn sink(printed: Printed, by_index: &PrintedByIndex) -> OutputSink {
    if printed == Printed::Discard {
        return OutputSink::Discard;
    }
    let by_index = by_index.clone();
    OutputSink::call(move |_, index, output| {
        by_index.lock().unwrap_or_else(|p| p.into_inner()).insert(index, output.clone());
    })
}

/// The task, through its JSON entry point, with its chunk size: the one
/// asked for; from a file of `count` lines, the library's four chunks per
/// worker (of `workers`), at most [`FILE_CHUNK_MAX`] inputs each; from stdin,
/// [`STDIN_CHUNK`].
fn json_task<'pool>(
    task: TaskRef<'pool>,
    workers: usize,
    args: &RunArgs,
    count: Option<usize>,
) -> Result<JsonTask<'pool>> {
    let chunk = match (args.pool.chunk_size, count) {
        (Some(n), _) => n as usize,
        (None, Some(n)) => ChunkSize::Auto.resolve((n, Some(n)), workers).min(FILE_CHUNK_MAX),
        (None, None) => STDIN_CHUNK,
    };
    Ok(task.chunk_size(chunk).json()?)
}

/// Where each result goes as it arrives: the output, the report's counts
/// and the progress bar.
struct Results<'a> {
    args: &'a RunArgs,
    /// The lines in flight, by index, for their number and text.
    pending: Pending,
    /// What their tasks printed.
    printed: PrintedByIndex,
    output: Output,
    progress: Progress,
    report: Report,
    /// Whether whoever reads the output has gone (`wasmpool run … | head`):
    /// the run then stops quietly, as command-line tools do.
    closed: bool,
    /// Cluster mode: a rank lost before it answered this input.
    lost: Option<TaskError>,
}

impl Results<'_> {
    /// Writes the result of the input at `index` (its line, or its error
    /// record), and says whether to go on.
    fn take(&mut self, index: usize, result: Result<String, TaskError>) -> Result<Flow> {
        if let Err(error) = &result
            && matches!(error.failure, TaskFailure::RankLost { .. })
        {
            self.lost = Some(error.clone());
            return Ok(Flow::Stop);
        }
        let numbered = self.args.unordered;
        let line =
            self.pending.borrow_mut().remove(&index).unwrap_or(Line { number: index as u64 + 1, text: Vec::new() });
        let printed = self.printed.lock().unwrap_or_else(|p| p.into_inner()).remove(&index);
        let stopping = result.is_err() && self.args.on_error == OnError::Stop;
        let recorded = match &printed {
            Some(output) if self.args.printed == Printed::Records && !stopping => Some(output),
            Some(output) => {
                self.progress.print(&output.marked_lines(&format!("line {}", line.number)));
                None
            }
            None if self.args.printed == Printed::Records => Some(&NOTHING_PRINTED),
            None => None,
        };
        self.report.lines += 1;
        self.progress.done(result.is_ok());
        let written = match result {
            Ok(json) => self.output.write(index, &result_line(line.number, &json, numbered, recorded)),
            Err(error) => {
                self.report.failed += 1;
                let failure = LineError::new(&line, &error);
                if stopping {
                    self.progress.finish();
                    // The message is escaped already (by the error's
                    // `Display`); the input is the file's, escaped too.
                    eprintln!(
                        "wasmpool: line {} failed: {}\n  input: {}",
                        failure.line,
                        failure.message,
                        EscapedLine(&failure.input)
                    );
                    self.report.stopped = true;
                    return Ok(Flow::Stop);
                }
                self.output.write(index, &error_line(&failure, numbered, recorded))
            }
        };
        match written {
            Ok(()) => Ok(Flow::Go),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(Flow::Stop)
            }
            Err(e) => Err(e).context("cannot write the results"),
        }
    }

    /// Flushes the output (unless its reader has gone) and ends the
    /// progress bar.
    fn finish(&mut self) -> Result<()> {
        if self.closed {
            tracing::info!("the output was closed; stopping");
        } else {
            match self.output.finish() {
                Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e).context("cannot write the results"),
                _ => {}
            }
        }
        self.progress.finish();
        Ok(())
    }
}

/// The output (created only once everything else is ready), or stdout,
/// and the inputs already done (when resuming; `inputs`: how many there
/// are, if known). A file, or a new path, is journaled, neither followed
/// through a link nor shared with another name (`journal::checked`); a
/// device or pipe given as `-o` is written as a stream.
fn open_output(
    path: Option<&Path>,
    source: &Source,
    identity: &Identity,
    args: &RunArgs,
    inputs: Option<usize>,
) -> Result<(Output, Done)> {
    let Some(path) = path else {
        return Ok((
            Output::Stream(Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))),
            Done::default(),
        ));
    };
    if source.is_file(path) {
        bail!("the output {} is the input: it would be emptied before it is read", path.display());
    }
    let granted = writable_grant_holding(path, &args.grants);
    if let Some(folder) = &granted {
        eprintln!(
            "wasmpool: warning: the output {} is inside {}, which tasks may write (--allow-write-dir): a task \
             could change it or its journal, or put a link in its place; write the output elsewhere",
            shown(path),
            shown(folder)
        );
    }
    match checked::destination(path, granted.is_none())? {
        Destination::Stream if args.resume => {
            bail!("cannot resume into {}: it is not a file, so it has no journal", shown(path))
        }
        Destination::Stream => {
            let file = checked::open_stream(path)?;
            Ok((Output::Stream(Box::new(BufWriter::with_capacity(1 << 16, file))), Done::default()))
        }
        Destination::File if args.resume => {
            let (journal, done) = Journal::resume(path, identity, !args.unordered, inputs)?;
            tracing::info!(done = done.len(), "resuming");
            Ok((Output::Journaled(journal), done))
        }
        Destination::File => Ok((Output::Journaled(Journal::create(path, identity)?), Done::default())),
    }
}

/// The folder granted with `--allow-write-dir` that holds `output` (and so
/// its journal), if any. Compared canonical: `./out`, `out/../out` and a
/// link to the folder are all found.
fn writable_grant_holding(output: &Path, grants: &GrantArgs) -> Option<PathBuf> {
    let parent = match output.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
        Some(parent) => parent,
        None => return None,
    };
    // Compared both as written and with links followed: a folder a task
    // may write can hold a link that leads the rest of the path elsewhere.
    let written = lexically_absolute(parent);
    let folder = parent.canonicalize().ok();
    grants.dirs().filter(|dir| dir.writable).find_map(|dir| {
        let granted = Path::new(dir.host);
        let as_written = lexically_absolute(granted);
        let followed = granted.canonicalize().ok();
        let inside = written.as_ref().zip(as_written.as_ref()).is_some_and(|(w, g)| w.starts_with(g))
            || folder.as_ref().zip(followed.as_ref()).is_some_and(|(f, g)| f.starts_with(g));
        inside.then(|| followed.or(as_written).unwrap_or_else(|| granted.to_owned()))
    })
}

/// `path` made absolute against the current folder, `.` and `..` resolved
/// by name (no link followed).
fn lexically_absolute(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let absolute = if path.is_absolute() { path.to_owned() } else { std::env::current_dir().ok()?.join(path) };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// The output of a task that printed nothing.
static NOTHING_PRINTED: TaskOutput = TaskOutput { stdout: Vec::new(), stderr: Vec::new() };

/// The module file's SHA-256, in hex, for the journal.
fn module_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(write: &[&str]) -> GrantArgs {
        GrantArgs {
            allow_env: Vec::new(),
            allow_dir: Vec::new(),
            allow_write_dir: write.iter().map(|spec| (*spec).to_owned()).collect(),
            allow_wall_clock: false,
            allow_monotonic_clock: false,
        }
    }

    #[test]
    fn an_output_inside_a_writable_grant_is_found_however_it_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(shared.join("deep")).unwrap();
        let spec = format!("{}::/out", shared.display());
        let canonical = shared.canonicalize().unwrap();
        for output in [shared.join("out.jsonl"), shared.join("deep/out.jsonl"), shared.join("deep/../x.jsonl")] {
            assert_eq!(
                writable_grant_holding(&output, &grants(&[spec.as_str()])),
                Some(canonical.clone()),
                "{output:?}"
            );
        }
        // Beside it, or granted read-only: no.
        assert_eq!(writable_grant_holding(&dir.path().join("out.jsonl"), &grants(&[spec.as_str()])), None);
        let sibling = dir.path().join("shared-not");
        std::fs::create_dir(&sibling).unwrap();
        assert_eq!(writable_grant_holding(&sibling.join("out.jsonl"), &grants(&[spec.as_str()])), None);
        let read_only = GrantArgs { allow_dir: vec![spec.clone()], ..grants(&[]) };
        assert_eq!(writable_grant_holding(&shared.join("out.jsonl"), &read_only), None);
        // Through a link a task planted in the grant, leading elsewhere.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&sibling, shared.join("away")).unwrap();
            assert_eq!(
                writable_grant_holding(&shared.join("away/out.jsonl"), &grants(&[spec.as_str()])),
                Some(canonical.clone())
            );
        }
    }

    #[test]
    fn grants_are_recorded_with_environment_values_hashed() {
        assert_eq!(grants_identity(&grants(&[])), "none");
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("{}::/data", dir.path().display());
        let all = GrantArgs {
            allow_env: vec!["KEY=secret value".to_owned()],
            allow_dir: vec![spec.clone()],
            allow_wall_clock: true,
            allow_monotonic_clock: true,
            ..grants(&[spec.as_str()])
        };
        let recorded = grants_identity(&all);
        let host = dir.path().canonicalize().unwrap().display().to_string();
        let hash = &hex(&Sha256::digest(b"secret value"))[..16];
        assert_eq!(
            recorded,
            format!("read {host}::/data, write {host}::/data, env KEY=sha256:{hash}, wall clock, monotonic clock")
        );
        assert!(!recorded.contains("secret"), "{recorded}");
        let other = GrantArgs { allow_env: vec!["KEY=other value".to_owned()], ..all };
        assert_ne!(grants_identity(&other), recorded, "another value is another grant");
        assert_eq!(env_identity("WASMPOOL_SURELY_UNSET_VARIABLE"), "env WASMPOOL_SURELY_UNSET_VARIABLE unset");
    }
}
