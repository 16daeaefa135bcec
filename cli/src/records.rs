//! The lines `run` writes: results, and error objects for failed lines.

use crate::input::Line;
use serde::Serialize;
use wasmpool::TaskError;
use wasmpool::text::escape_json;

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
            message: error.failure.to_string(),
        }
    }
}

/// A result line: the bare result in input order, or with its line number
/// when results are written as they complete.
pub fn result_line(line: u64, result: &str, numbered: bool) -> String {
    if numbered { format!("{{\"line\":{line},\"result\":{result}}}") } else { result.to_owned() }
}

/// An error line: `{"error": {...}}`, with the line number in front when
/// results are written as they complete.
pub fn error_line(error: &LineError, numbered: bool) -> String {
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
    use wasmpool::TaskFailure;

    fn failed_line() -> LineError {
        let line = Line { number: 7, text: b"[1, 0]".to_vec() };
        let error =
            TaskError { task: "divide".into(), index: 6, failure: TaskFailure::Failed("division by zero".into()) };
        LineError::new(&line, &error)
    }

    #[test]
    fn error_lines_name_the_line_its_input_and_the_cause() {
        assert_eq!(
            error_line(&failed_line(), false),
            r#"{"error":{"line":7,"input":"[1, 0]","task":"divide","kind":"failed","message":"failed: division by zero"}}"#
        );
        assert!(error_line(&failed_line(), true).starts_with(r#"{"line":7,"error":{"line":7,"#));
    }

    #[test]
    fn results_are_bare_or_numbered() {
        assert_eq!(result_line(3, "[1,2]", false), "[1,2]");
        assert_eq!(result_line(3, "[1,2]", true), r#"{"line":3,"result":[1,2]}"#);
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
