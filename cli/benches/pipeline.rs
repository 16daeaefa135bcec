//! The `wasmpool` command's throughput and memory against the library it is
//! built on, side by side:
//!
//! ```sh
//! cargo bench -p wasmpool-cli --bench pipeline            # 1,000,000 lines
//! LINES=100000 cargo bench -p wasmpool-cli --bench pipeline
//! ```
//!
//! Every mode runs `sqrt` over the same lines and must produce the same
//! results. The baseline is the library's own streaming map (`imap`, with
//! postcard) in one process; then the library's JSON map, and the command
//! from a file, from stdin, and with worker processes. Each command run's
//! peak memory comes from `/usr/bin/time` (where it exists), for the full
//! run and for one tenth of the lines: a bounded pipeline needs the same
//! memory for both.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmpool::Pool;

fn main() -> anyhow::Result<()> {
    let lines: usize = std::env::var("LINES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.jsonl");
    let small_input = dir.path().join("small.jsonl");
    write_lines(&input, lines)?;
    write_lines(&small_input, lines / 10)?;
    let expected: Vec<f64> = (0..lines).map(|i| (i as f64).sqrt()).collect();
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).build()?;
    println!("{lines} lines of `sqrt`, {} workers", pool.workers());
    println!("{:<44} {:>12} {:>8} {:>14} {:>14}", "mode", "lines/s", "ratio", "peak RSS", "at 1/10 lines");

    // The baseline: the library's postcard map, results formatted as text.
    let started = Instant::now();
    let mut out = Vec::with_capacity(lines * 20);
    for root in pool.imap::<_, f64>("sqrt", (0..lines).map(|i| i as f64))? {
        writeln!(out, "{}", root?)?;
    }
    let baseline = started.elapsed();
    check(&out, &expected, "library, postcard")?;
    row("library imap, postcard (baseline)", lines, baseline, baseline, None);

    let texts: Vec<String> = (0..lines).map(|i| i.to_string()).collect();
    let started = Instant::now();
    let mut out = Vec::with_capacity(lines * 20);
    for root in pool.task("sqrt")?.json()?.imap(&texts)? {
        writeln!(out, "{}", root?)?;
    }
    let elapsed = started.elapsed();
    check(&out, &expected, "library, JSON")?;
    row("library JsonTask::imap", lines, elapsed, baseline, None);
    drop(pool);

    let output = dir.path().join("out.jsonl");
    // `-o FILE` keeps a journal beside the output (for --resume); `> FILE`
    // is a stream, not journaled: the two rows side by side are its cost.
    for (name, processes, io) in [
        ("wasmpool run -i FILE -o FILE (journaled)", false, Io::Files),
        ("wasmpool run -i FILE > FILE (no journal)", false, Io::ToStdout),
        ("wasmpool run < FILE > FILE", false, Io::Std),
        ("wasmpool run -i FILE -o FILE --processes", true, Io::Files),
    ] {
        let run =
            |input: &Path| -> anyhow::Result<(Duration, Option<u64>)> { command_run(input, &output, processes, io) };
        let (elapsed, rss) = run(&input)?;
        check(&std::fs::read(&output)?, &expected, name)?;
        let (_, small_rss) = run(&small_input)?;
        row(name, lines, elapsed, baseline, rss.zip(small_rss));
    }
    Ok(())
}

fn write_lines(path: &Path, lines: usize) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..lines {
        writeln!(file, "{i}")?;
    }
    Ok(file.flush()?)
}

/// How the command reads and writes.
#[derive(Clone, Copy)]
enum Io {
    /// `-i FILE -o FILE`: the output journaled.
    Files,
    /// `-i FILE`, stdout to a file.
    ToStdout,
    /// stdin and stdout.
    Std,
}

/// Runs the command on `input`; its wall time and peak RSS in KiB.
fn command_run(input: &Path, output: &Path, processes: bool, io: Io) -> anyhow::Result<(Duration, Option<u64>)> {
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "%M"]).arg(env!("CARGO_BIN_EXE_wasmpool"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_wasmpool"))
    };
    command.args(["run", guest_tasks::WASM_PATH, "sqrt", "--quiet"]).stderr(Stdio::piped());
    if processes {
        command.arg("--processes");
    }
    match io {
        Io::Files => command.arg("-i").arg(input).arg("-o").arg(output),
        Io::ToStdout => command.arg("-i").arg(input).stdout(std::fs::File::create(output)?),
        Io::Std => command.stdin(std::fs::File::open(input)?).stdout(std::fs::File::create(output)?),
    };
    let started = Instant::now();
    let result = command.output()?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&result.stderr);
    anyhow::ensure!(result.status.success(), "wasmpool failed: {stderr}");
    let rss = stderr.lines().last().and_then(|l| l.trim().parse().ok());
    Ok((elapsed, rss))
}

/// Every line must be the expected root (the command writes each result's
/// shortest JSON form, which reads back to the same bits).
fn check(out: &[u8], expected: &[f64], mode: &str) -> anyhow::Result<()> {
    let text = std::str::from_utf8(out)?;
    let mut count = 0;
    for (line, want) in text.lines().zip(expected) {
        let got: f64 = line.parse()?;
        anyhow::ensure!(got.to_bits() == want.to_bits(), "{mode}: {line} is not {want}");
        count += 1;
    }
    anyhow::ensure!(count == expected.len(), "{mode}: {count} results for {} lines", expected.len());
    Ok(())
}

fn row(mode: &str, lines: usize, elapsed: Duration, baseline: Duration, rss: Option<(u64, u64)>) {
    let rate = lines as f64 / elapsed.as_secs_f64();
    let ratio = baseline.as_secs_f64() / elapsed.as_secs_f64();
    let (rss, small) = match rss {
        Some((full, small)) => {
            (format!("{:.1} MiB", full as f64 / 1024.0), format!("{:.1} MiB", small as f64 / 1024.0))
        }
        None => ("-".into(), "-".into()),
    };
    println!("{mode:<44} {rate:>12.0} {ratio:>8.2} {rss:>14} {small:>14}");
}
