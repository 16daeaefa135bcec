//! The lines `run` writes: results, and error objects for failed lines.

use crate::input::Line;
use serde::Serialize;
use wasmpool::text::escape_json;
use wasmpool::{Capability, TaskError, TaskFailure, TaskOutput};

/// Longest input quoted back in an error object, in bytes.
const QUOTED_INPUT_BYTES: usize = 200;

/// What went wrong on one line, as written in its `{"error": …}` object.
#[derive(Debug, Serialize)]
pub struct LineError {
    /// The line's number in the input (from 1).
    pub line: u64,
    /// The line's text (at most 200 bytes of it).
    pub input: String,
    /// The task.
    pub task: String,
    /// A stable name for the kind of failure (`wasmpool::FailureKind::as_str`).
    pub kind: &'static str,
    /// The failure in words.
    pub message: String,
}

impl LineError {
    pub fn new(line: &Line, error: &TaskError) -> LineError {
        LineError {
            line: line.number,
            input: shorten(&line.text),
            task: error.task.clone(),
            kind: error.failure.kind().as_str(),
            message: describe(&error.failure),
        }
    }
}

/// A failure in the command's words: a capability the task was refused
/// names the option granting it.
pub fn describe(failure: &TaskFailure) -> String {
    match failure {
        TaskFailure::NotGranted { capability, failure } => not_granted(*capability, failure),
        other => other.to_string(),
    }
}

fn not_granted(capability: Capability, then: &TaskFailure) -> String {
    format!(
        "it used {} ({}), which is not granted; allow it with {}.{}",
        capability.what(),
        capability.uses(),
        capability.flag(),
        wasmpool::then_sentence(then)
    )
}

/// A result line: the bare result in input order, or with its line number
/// when results are written as they complete; with what the task printed
/// when asked (`printed`), as an object with "result", "stdout" and
/// "stderr".
pub fn result_line(line: u64, result: &str, numbered: bool, printed: Option<&TaskOutput>) -> String {
    match (numbered, printed) {
        (false, None) => result.to_owned(),
        (true, None) => format!("{{\"line\":{line},\"result\":{result}}}"),
        (false, Some(out)) => format!("{{\"result\":{result}{}}}", printed_fields(out)),
        (true, Some(out)) => format!("{{\"line\":{line},\"result\":{result}{}}}", printed_fields(out)),
    }
}

/// `,"stdout":"…","stderr":"…"`: what a task printed, as JSON strings
/// (invalid UTF-8 replaced, characters JSON lets stand raw escaped).
fn printed_fields(out: &TaskOutput) -> String {
    let text = |bytes: &[u8]| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string();
    escape_json(&format!(",\"stdout\":{},\"stderr\":{}", text(&out.stdout), text(&out.stderr))).into_owned()
}

/// An error line: `{"error": {...}}`, with the line number in front when
/// results are written as they complete, and what the task printed after
/// it when asked.
pub fn error_line(error: &LineError, numbered: bool, printed: Option<&TaskOutput>) -> String {
    let line = error_object(error, numbered);
    match printed {
        Some(out) => format!("{}{}}}", &line[..line.len() - 1], printed_fields(out)),
        None => line,
    }
}

fn error_object(error: &LineError, numbered: bool) -> String {
    #[derive(Serialize)]
    struct Numbered<'a> {
        line: u64,
        error: &'a LineError,
    }
    #[derive(Serialize)]
    struct Plain<'a> {
        error: &'a LineError,
    }
    let encoded = if numbered {
        serde_json::to_string(&Numbered { line: error.line, error })
    } else {
        serde_json::to_string(&Plain { error })
    };
    // Strings and integers always encode. The input line and the message
    // may hold characters JSON lets stand raw: they are escaped.
    match encoded {
        Ok(json) => escape_json(&json).into_owned(),
        Err(e) => format!("{{\"error\":{{\"line\":{},\"message\":\"{e}\"}}}}", error.line),
    }
}

/// The line's text for an error object: lossy UTF-8, at most
/// [`QUOTED_INPUT_BYTES`] bytes, cut at a character boundary.
fn shorten(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    if text.len() <= QUOTED_INPUT_BYTES {
        return text.into_owned();
    }
    let mut end = QUOTED_INPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_line() -> LineError {
        let line = Line { number: 7, text: b"[1, 0]".to_vec() };
        let error =
            TaskError { task: "divide".into(), index: 6, failure: TaskFailure::Failed("division by zero".into()) };
        LineError::new(&line, &error)
    }

    #[test]
    fn error_lines_name_the_line_its_input_and_the_cause() {
        assert_eq!(
            error_line(&failed_line(), false, None),
            r#"{"error":{"line":7,"input":"[1, 0]","task":"divide","kind":"failed","message":"failed: division by zero"}}"#
        );
        assert!(error_line(&failed_line(), true, None).starts_with(r#"{"line":7,"error":{"line":7,"#));
    }

    #[test]
    fn results_are_bare_or_numbered() {
        assert_eq!(result_line(3, "[1,2]", false, None), "[1,2]");
        assert_eq!(result_line(3, "[1,2]", true, None), r#"{"line":3,"result":[1,2]}"#);
    }

    #[test]
    fn printed_output_joins_the_record_when_asked() {
        let out = TaskOutput { stdout: b"hi \"you\"\n\x1b[2J".to_vec(), stderr: vec![0xff] };
        let fields = "\"stdout\":\"hi \\\"you\\\"\\n\\u001b[2J\",\"stderr\":\"\u{fffd}\"";
        assert_eq!(result_line(3, "9", false, Some(&out)), format!(r#"{{"result":9,{fields}}}"#));
        assert_eq!(result_line(3, "9", true, Some(&out)), format!(r#"{{"line":3,"result":9,{fields}}}"#));
        let error = error_line(&failed_line(), false, Some(&out));
        assert!(
            error.starts_with(r#"{"error":{"line":7,"#) && error.ends_with(&format!(r#""}},{fields}}}"#)),
            "{error}"
        );
        serde_json::from_str::<serde_json::Value>(&error).unwrap();
    }

    #[test]
    fn a_refused_clock_names_the_option_granting_it() {
        let failure = TaskFailure::NotGranted {
            capability: Capability::MonotonicClock,
            failure: Box::new(TaskFailure::Panic { message: "boom".into(), location: "time.rs:1:2".into() }),
        };
        let text = describe(&failure);
        assert!(text.contains("--allow-monotonic-clock") && text.contains("Instant::now"), "{text}");
        assert!(!text.contains("WasiConfig"), "{text}");
    }

    #[test]
    fn long_inputs_are_cut_at_a_character() {
        let long = "é".repeat(300);
        let short = shorten(long.as_bytes());
        assert!(short.ends_with('…'));
        assert!(short.len() <= QUOTED_INPUT_BYTES + '…'.len_utf8());
        assert_eq!(shorten(&[b'a', 0xff]), "a\u{fffd}");
    }
}
