//! `wasmpool run`: a task over JSON lines, in parallel, with bounded memory.
//!
//! Lines are pulled from the input only as workers free up (the pool's
//! streaming map), each result is written as soon as its turn comes, and
//! only the lines in flight are kept: millions of lines stream through in
//! the memory of a few thousand. Under an MPI launcher the pool spans every
//! rank; rank 0 reads, schedules and writes, the others serve it. Output
//! to a file is journaled (see `journal`), so a run cut short can resume.

use crate::args::{OnError, Printed, RunArgs};
use crate::input::{Line, Lines, Pending, Source};
use crate::journal::{self, Done, Identity, Journal};
use crate::progress::{Progress, Report};
use crate::records::{LineError, error_line, result_line};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, IsTerminal, Write};
use std::path::Path;
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
    // Tasks written in Python: the component built from them (cached).
    args.module = crate::python_tasks::resolve(&args.module)?;
    let source = Source::new(args.input.as_deref());
    let output_file = args.output.as_deref().filter(|path| *path != Path::new("-"));
    let printed = PrintedByIndex::default();
    let Some(pool) = start_pool(&args, output_file, sink(args.printed, &printed))? else {
        return Ok(Report::default());
    };
    // Before the output is created: a task the module lacks leaves no file.
    let task = pool.task(&args.task)?;
    let identity = Identity {
        module_sha256: module_sha256(&args.module)?,
        task: args.task.clone(),
        seed: pool.seed(),
        settings: format!("{:?}, unordered: {}", args.limits, args.unordered),
    };
    let (output, done) = open_output(output_file, &source, &identity, &args)?;
    let resumed = done.len();
    let count = source.count()?.map(|n| n.saturating_sub(resumed));
    let task = json_task(task, pool.workers(), &args, count)?;

    let pending = Pending::default();
    let max_len = args.limits.max_memory.unwrap_or(wasmpool::DEFAULT_MAX_MEMORY);
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

/// The pool for this run (`None` on a rank other than 0 of a cluster, once
/// it has served rank 0). Resuming an output file reuses its seed; only
/// rank 0 (or a run on one machine) has the output, and the other ranks
/// get the seed from rank 0.
fn start_pool(args: &RunArgs, output_file: Option<&Path>, output: OutputSink) -> Result<Option<wasmpool::Pool>> {
    let follower = wasmpool::cluster::launched_rank().is_some_and(|rank| rank != 0);
    let resumed_seed = match output_file {
        Some(path) if args.resume && !follower => Some(journal::identity(path)?.seed),
        _ => None,
    };
    crate::pool::for_run(args, args.seed.or(resumed_seed), output)
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
    let chunk = match (args.chunk_size, count) {
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
/// and the inputs already done (when resuming). A file, or a new path, is
/// journaled; a device or pipe given as `-o` is written as a stream.
fn open_output(path: Option<&Path>, source: &Source, identity: &Identity, args: &RunArgs) -> Result<(Output, Done)> {
    let Some(path) = path else {
        return Ok((
            Output::Stream(Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))),
            Done::default(),
        ));
    };
    if source.is_file(path) {
        anyhow::bail!("the output {} is the input: it would be emptied before it is read", path.display());
    }
    let regular = std::fs::metadata(path).map_or(true, |m| m.is_file());
    if !regular {
        if args.resume {
            anyhow::bail!("cannot resume into {}: it is not a file, so it has no journal", path.display());
        }
        let file = File::create(path).with_context(|| format!("cannot create output {}", path.display()))?;
        return Ok((Output::Stream(Box::new(BufWriter::with_capacity(1 << 16, file))), Done::default()));
    }
    if args.resume {
        let (journal, done) = Journal::resume(path, identity, !args.unordered)?;
        tracing::info!(done = done.len(), "resuming");
        Ok((Output::Journaled(journal), done))
    } else {
        Ok((Output::Journaled(Journal::create(path, identity)?), Done::default()))
    }
}

/// The output of a task that printed nothing.
static NOTHING_PRINTED: TaskOutput = TaskOutput { stdout: Vec::new(), stderr: Vec::new() };

/// The module file's SHA-256, in hex, for the journal.
fn module_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}
