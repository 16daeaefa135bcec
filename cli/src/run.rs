//! `wasmpool run`: a task over JSON lines, in parallel, with bounded memory.
//!
//! Lines are pulled from the input only as workers free up (the pool's
//! streaming map), each result is written as soon as its turn comes, and
//! only the lines in flight are kept: millions of lines stream through in
//! the memory of a few thousand.

use crate::args::{OnError, RunArgs};
use crate::input::{Line, Lines, Pending, Source};
use crate::progress::{Progress, Report};
use crate::records::{LineError, error_line, result_line};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;
use wasmpool::text::EscapedLine;
use wasmpool::{ChunkSize, TaskError};

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

/// Runs the task over every line; the report's `failed` decides the exit
/// status. Errors are what stops the run as a whole (exit status 2).
pub fn run(args: RunArgs) -> Result<Report> {
    let source = Source::new(args.input.as_deref());
    let pool = crate::pool::for_run(&args)?;
    let mut task = pool.task(&args.task)?;
    let count = source.count()?;
    let mut output = open_output(args.output.as_deref(), &source)?;
    // From a file: the library's four chunks per worker, at most
    // FILE_CHUNK_MAX inputs each.
    task = task.chunk_size(match (args.chunk_size, count) {
        (Some(n), _) => n as usize,
        (None, Some(n)) => ChunkSize::Auto.resolve((n, Some(n)), pool.workers()).min(FILE_CHUNK_MAX),
        (None, None) => STDIN_CHUNK,
    });
    let task = task.json()?;

    let pending = Pending::default();
    let max_len = args.limits.max_memory.unwrap_or(wasmpool::sandbox::limits::DEFAULT_MAX_MEMORY);
    let lines = Lines::new(source.open()?, count, max_len, pending.clone());
    let read_error = lines.error_slot();
    let to_stdout = args.output.as_deref().is_none_or(|path| path == Path::new("-"));
    let mut progress = Progress::new(count, args.quiet, to_stdout && std::io::stdout().is_terminal());
    let started = Instant::now();
    let mut report = Report { seed: pool.seed(), ..Report::default() };
    let numbered = args.unordered;

    // Whether whoever reads the output has gone (`wasmpool run … | head`):
    // the run then stops quietly, as command-line tools do.
    let mut closed = false;
    let mut answer = |index: usize, result: Result<String, TaskError>| -> Result<Flow> {
        let line = pending.borrow_mut().remove(&index).unwrap_or(Line { number: index as u64 + 1, text: Vec::new() });
        report.lines += 1;
        progress.done(result.is_ok());
        let written = match result {
            Ok(json) => writeln!(output, "{}", result_line(line.number, &json, numbered)),
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
                writeln!(output, "{}", error_line(&failure, numbered))
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
        for (index, result) in task.imap_unordered(lines)? {
            if answer(index, result)? == Flow::Stop {
                break;
            }
        }
    } else {
        for (index, result) in task.imap(lines)?.enumerate() {
            if answer(index, result)? == Flow::Stop {
                break;
            }
        }
    }
    if closed {
        tracing::info!("the output was closed; stopping");
    } else {
        match output.flush() {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e).context("cannot write the results"),
            _ => {}
        }
    }
    progress.finish();
    if let Some(error) = read_error.borrow_mut().take() {
        return Err(error).with_context(|| source.describe());
    }
    report.wall = started.elapsed();
    report.stats = pool.stats();
    if !args.quiet {
        eprintln!("{}", report.summary());
    }
    Ok(report)
}

/// The output file (created only once everything else is ready), or stdout.
fn open_output(path: Option<&Path>, source: &Source) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) if path != Path::new("-") => {
            if source.is_file(path) {
                anyhow::bail!("the output {} is the input: it would be emptied before it is read", path.display());
            }
            let file = File::create(path).with_context(|| format!("cannot create output {}", path.display()))?;
            Box::new(BufWriter::with_capacity(1 << 16, file))
        }
        _ => Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock())),
    })
}
