//! `wasmpool run`: a task over JSON lines, in parallel, with bounded memory.
//!
//! Lines are pulled from the input only as workers free up (the pool's
//! streaming map), each result is written as soon as its turn comes, and
//! only the lines in flight are kept: millions of lines stream through in
//! the memory of a few thousand. Under an MPI launcher the pool spans every
//! rank; rank 0 reads, schedules and writes, the others serve it. Output
//! to a file is journaled (see `journal`), so a run cut short can resume.

use crate::args::{OnError, RunArgs};
use crate::input::{Line, Lines, Pending, Source};
use crate::journal::{self, Done, Identity, Journal};
use crate::progress::{Progress, Report};
use crate::records::{LineError, error_line, result_line};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;
use wasmpool::text::EscapedLine;
use wasmpool::{ChunkSize, TaskError, TaskFailure};

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
pub fn run(args: RunArgs) -> Result<Report> {
    let source = Source::new(args.input.as_deref());
    let output_file = args.output.as_deref().filter(|path| *path != Path::new("-"));
    // Only rank 0 (or a run on one machine) has the output; the other
    // ranks get the seed from rank 0.
    let follower = wasmpool::cluster::launched_rank().is_some_and(|rank| rank != 0);
    let resumed_seed = match output_file {
        Some(path) if args.resume && !follower => Some(journal::identity(path)?.seed),
        _ => None,
    };
    let Some(pool) = crate::pool::for_run(&args, args.seed.or(resumed_seed))? else {
        return Ok(Report::default());
    };
    let mut task = pool.task(&args.task)?;
    let identity = Identity {
        module_sha256: module_sha256(&args.module)?,
        task: args.task.clone(),
        seed: pool.seed(),
        settings: format!("{:?}, unordered: {}", args.limits, args.unordered),
    };
    let (mut output, done) = open_output(output_file, &source, &identity, &args)?;
    let count = source.count()?.map(|n| n.saturating_sub(done.len()));
    // From a file: the library's four chunks per worker, at most
    // FILE_CHUNK_MAX inputs each.
    task = task.chunk_size(match (args.chunk_size, count) {
        (Some(n), _) => n as usize,
        (None, Some(n)) => ChunkSize::Auto.resolve((n, Some(n)), pool.workers()).min(FILE_CHUNK_MAX),
        (None, None) => STDIN_CHUNK,
    });
    let task = task.json()?;

    let pending = Pending::default();
    let max_len = args.limits.max_memory.unwrap_or(wasmpool::DEFAULT_MAX_MEMORY);
    let resumed = done.len();
    let first = if args.unordered { 0 } else { resumed };
    let lines = Lines::new(source.open()?, count, max_len, pending.clone(), done);
    let read_error = lines.error_slot();
    let to_stdout = output_file.is_none();
    let mut progress = Progress::new(count, args.quiet, to_stdout && std::io::stdout().is_terminal());
    let started = Instant::now();
    let mut report = Report { seed: pool.seed(), resumed: resumed as u64, ..Report::default() };
    let numbered = args.unordered;

    // Whether whoever reads the output has gone (`wasmpool run … | head`):
    // the run then stops quietly, as command-line tools do.
    let mut closed = false;
    // Cluster mode: a rank lost before it answered this input.
    let mut lost: Option<TaskError> = None;
    let mut answer = |index: usize, result: Result<String, TaskError>| -> Result<Flow> {
        if let Err(error) = &result
            && matches!(error.failure, TaskFailure::RankLost { .. })
        {
            lost = Some(error.clone());
            return Ok(Flow::Stop);
        }
        let line = pending.borrow_mut().remove(&index).unwrap_or(Line { number: index as u64 + 1, text: Vec::new() });
        report.lines += 1;
        progress.done(result.is_ok());
        let written = match result {
            Ok(json) => output.write(index, &result_line(line.number, &json, numbered)),
            Err(error) => {
                report.failed += 1;
                let failure = LineError::new(&line, &error);
                if args.on_error == OnError::Stop {
                    progress.finish();
                    // The message is escaped already (by the error's
                    // `Display`); the input is the file's, escaped too.
                    eprintln!(
                        "wasmpool: line {} failed: {}\n  input: {}",
                        failure.line,
                        failure.message,
                        EscapedLine(&failure.input)
                    );
                    report.stopped = true;
                    return Ok(Flow::Stop);
                }
                output.write(index, &error_line(&failure, numbered))
            }
        };
        match written {
            Ok(()) => Ok(Flow::Go),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                closed = true;
                Ok(Flow::Stop)
            }
            Err(e) => Err(e).context("cannot write the results"),
        }
    };
    if args.unordered {
        for (index, result) in task.imap_unordered_indexed(lines)? {
            if answer(index, result)? == Flow::Stop {
                break;
            }
        }
    } else {
        for (n, result) in task.imap_indexed(lines)?.enumerate() {
            if answer(first + n, result)? == Flow::Stop {
                break;
            }
        }
    }
    if closed {
        tracing::info!("the output was closed; stopping");
    } else {
        match output.finish() {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e).context("cannot write the results"),
            _ => {}
        }
    }
    progress.finish();
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

/// The module file's SHA-256, in hex, for the journal.
fn module_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}
