//! Where the output a task prints goes when its caller does not ask for it.
//!
//! A task built for `wasm32-wasip1` prints with `println!` and `eprintln!`
//! like any program; the pool captures what it writes, per task, up to the
//! output limit ([`TaskOutput`]). [`call_captured`](crate::TaskRef::call_captured)
//! and [`map_captured`](crate::TaskRef::map_captured) return it beside the
//! result. Every other call hands it to the pool's [`OutputSink`]: by
//! default the host's stderr, each line marked with the task and its input.

use crate::sandbox::wasi::TaskOutput;
use crate::text::EscapedLine;
use std::fmt;
use std::io::Write;
use std::sync::Arc;

/// A function given each task's printed output: the task's name, the
/// input's index in its map (0 for a single call) and what it wrote.
pub type OutputFn = dyn Fn(&str, usize, &TaskOutput) + Send + Sync;

/// Where a pool puts the output of tasks whose caller does not take it
/// ([`PoolBuilder::output_sink`](crate::PoolBuilder::output_sink)).
///
/// The output of a task arrives when the task has finished, with its result
/// (failed tasks' too), on the thread that collects the results: in input
/// order for `imap` and `map_each` (whatever the number of workers), as
/// tasks finish for `map`, `imap_unordered` and exchanges.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OutputSink {
    /// The host's stderr, each line marked with the task and the input's
    /// index, `[square #3] text` (`[square #3 stderr] text` for what the
    /// task wrote to its stderr), escaped for a terminal. The default.
    #[default]
    Stderr,
    /// Nowhere: printed output is dropped.
    Discard,
    /// A function of yours ([`OutputSink::call`]).
    Call(Arc<OutputFn>),
}

impl OutputSink {
    /// A sink calling `f(task, index, output)` for every task that printed.
    pub fn call(f: impl Fn(&str, usize, &TaskOutput) + Send + Sync + 'static) -> Self {
        OutputSink::Call(Arc::new(f))
    }

    /// Hands one task's output over (nothing happens if it printed nothing).
    pub(crate) fn deliver(&self, task: &str, index: usize, output: &TaskOutput) {
        if output.is_empty() {
            return;
        }
        match self {
            OutputSink::Stderr => {
                // One write per task, so that tasks' lines never interleave;
                // a stderr that cannot be written to loses them (`eprint!`
                // would panic).
                let marked = output.marked_lines(&format!("{} #{index}", EscapedLine(task)));
                let _ = std::io::stderr().lock().write_all(marked.as_bytes());
            }
            OutputSink::Discard => {}
            OutputSink::Call(f) => f(task, index, output),
        }
    }
}

impl fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSink::Stderr => f.write_str("Stderr"),
            OutputSink::Discard => f.write_str("Discard"),
            OutputSink::Call(_) => f.write_str("Call(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn output(stdout: &str, stderr: &str) -> TaskOutput {
        TaskOutput { stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn lines_are_marked_and_escaped() {
        let marked = output("hello\r\n\x1b[31mred\nlast", "warn\n").marked_lines("greet #3");
        assert_eq!(marked, "[greet #3] hello\n[greet #3] \\u{1b}[31mred\n[greet #3] last\n[greet #3 stderr] warn\n");
        assert_eq!(output("\n", "").marked_lines("t"), "[t] \n");
        assert_eq!(output("", "").marked_lines("t"), "");
    }

    #[test]
    fn a_function_sink_gets_what_was_printed_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let sink = OutputSink::call(move |task, index, out| {
            log.lock().unwrap().push((task.to_owned(), index, out.stdout_text()))
        });
        sink.deliver("t", 4, &output("x\n", ""));
        sink.deliver("t", 5, &output("", ""));
        assert_eq!(*seen.lock().unwrap(), [("t".to_owned(), 4, "x\n".to_owned())]);
        OutputSink::Discard.deliver("t", 1, &output("dropped", ""));
    }
}
