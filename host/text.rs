//! Text a guest wrote, made safe to print on a terminal.
//!
//! Everything a module contains or reports is untrusted: panic and `Err`
//! messages, trap frame names from its name section, task names, parameter
//! types and docs from its task list, what it prints. Printed raw, such
//! text could move the cursor, rewrite earlier lines, change the window
//! title or hide text (terminal escape injection), or flood the terminal
//! with NUL bytes. Every error's `Display` and the `wasmpool` command's
//! human-readable output pass guest text through one of the two wrappers
//! here:
//!
//! - [`EscapedLine`] for text that belongs on one line (names, types,
//!   locations, frame names): every character listed below is escaped,
//!   newlines included;
//! - [`EscapedText`] for messages that may span lines (panic and `Err`
//!   messages, printed output): the same, except that `\n` and `\t` are
//!   kept, so a multi-line assertion message still reads as one.
//!
//! Escaped are the C0 controls (U+0000–U+001F), DEL (U+007F), the C1
//! controls (U+0080–U+009F, U+009B being an 8-bit escape introducer), the
//! bidirectional-text controls (U+061C, U+200E, U+200F, U+202A–U+202E,
//! U+2066–U+2069), which can make text display in an order other than
//! its own, and the line and paragraph separators (U+2028, U+2029). Each
//! is written as Rust writes it in a string literal: `\0`, `\t`, `\r`,
//! `\n`, else `\u{1b}` and the like. Nothing else changes: a backslash
//! stays a backslash, so paths read as they are.
//!
//! ```
//! use wasmpool::text::{EscapedLine, EscapedText};
//! assert_eq!(EscapedLine("\u{1b}[2Jgone").to_string(), "\\u{1b}[2Jgone");
//! assert_eq!(EscapedText("left: 1\nright: 2\r").to_string(), "left: 1\nright: 2\\r");
//! ```

use std::fmt;

/// Guest text for one line: control characters and newlines escaped.
#[derive(Debug, Clone, Copy)]
pub struct EscapedLine<'a>(pub &'a str);

/// Guest text that may span lines: control characters escaped, `\n` and
/// `\t` kept.
#[derive(Debug, Clone, Copy)]
pub struct EscapedText<'a>(pub &'a str);

impl fmt::Display for EscapedLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

impl fmt::Display for EscapedText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, true)
    }
}

/// `text` with every character [`EscapedLine`] escapes escaped, as a
/// `String` (for the places that need one rather than a `Display`).
pub fn escape_line(text: &str) -> String {
    EscapedLine(text).to_string()
}

/// Compact JSON text (as `serde_json::to_string` writes it: no whitespace
/// between tokens, so that these characters can only stand inside its
/// strings) with every character [`is_unsafe`] names written as a `\uXXXX`
/// escape. The value is the same; JSON lets a string hold DEL, the C1 and
/// the bidirectional controls raw, and serde_json writes them so.
pub fn escape_json(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) { push_json_escape(&mut out, c) } else { out.push(c) }
    }
    std::borrow::Cow::Owned(out)
}

/// Appends `c` as a JSON `\uXXXX` escape (every character [`is_unsafe`]
/// names is in the Basic Multilingual Plane, so four digits suffice).
pub(crate) fn push_json_escape(out: &mut String, c: char) {
    use std::fmt::Write;
    let _ = write!(out, "\\u{:04x}", c as u32);
}

/// Whether a character is escaped (newlines and tabs aside, which
/// [`EscapedText`] keeps).
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{2028}'
        | '\u{2029}')
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, keep_lines: bool) -> fmt::Result {
    let mut rest = text;
    // Safe runs are written whole; only the characters between them are
    // looked at one by one.
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_unsafe(c) && !(keep_lines && kept(c))) {
        f.write_str(&rest[..at])?;
        match c {
            '\0' => f.write_str("\\0")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '\n' => f.write_str("\\n")?,
            other => write!(f, "\\u{{{:x}}}", other as u32)?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    f.write_str(rest)
}

/// What [`EscapedText`] keeps.
fn kept(c: char) -> bool {
    c == '\n' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_sequences_nul_and_bidi_controls_are_escaped() {
        assert_eq!(EscapedLine("a\u{1b}]0;title\u{7}b").to_string(), "a\\u{1b}]0;title\\u{7}b");
        assert_eq!(EscapedLine("\0\0").to_string(), "\\0\\0");
        assert_eq!(EscapedLine("x\u{9b}31m").to_string(), "x\\u{9b}31m");
        assert_eq!(EscapedLine("abc\u{202e}fed").to_string(), "abc\\u{202e}fed");
        assert_eq!(EscapedLine("del\u{7f}").to_string(), "del\\u{7f}");
        assert_eq!(EscapedLine("sep\u{2028}").to_string(), "sep\\u{2028}");
    }

    #[test]
    fn lines_keep_newlines_and_tabs_but_not_carriage_returns() {
        assert_eq!(EscapedText("a\n\tb\r\nc").to_string(), "a\n\tb\\r\nc");
        assert_eq!(EscapedLine("a\n\tb").to_string(), "a\\n\\tb");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in ["", "plain", r"C:\Users\me", "ünïcödé ✓ 日本", "emoji 👩‍🔬 with a joiner"] {
            assert_eq!(EscapedLine(text).to_string(), text);
            assert_eq!(EscapedText(text).to_string(), text);
        }
    }

    #[test]
    fn json_keeps_its_value_without_raw_controls() {
        let json = serde_json::to_string(&"a\u{1b}b\u{7f}c\u{9b}d\u{202e}e\nf").unwrap();
        let escaped = escape_json(&json);
        assert_eq!(escaped, r#""a\u001bb\u007fc\u009bd\u202ee\nf""#);
        assert_eq!(serde_json::from_str::<String>(&escaped).unwrap(), "a\u{1b}b\u{7f}c\u{9b}d\u{202e}e\nf");
        assert!(matches!(escape_json("[1,\"plain\"]"), std::borrow::Cow::Borrowed(_)));
    }

    proptest! {
        /// Whatever a guest writes, nothing unsafe survives escaping.
        #[test]
        fn no_unsafe_character_survives(text in any::<String>()) {
            let line = EscapedLine(&text).to_string();
            prop_assert!(!line.chars().any(is_unsafe));
            let block = EscapedText(&text).to_string();
            prop_assert!(!block.chars().any(|c| is_unsafe(c) && !kept(c)));
            prop_assert_eq!(block.matches('\n').count(), text.matches('\n').count());
        }

        /// Escaped JSON is the same value, with nothing unsafe left raw.
        #[test]
        fn escaped_json_is_the_same_value(text in any::<String>()) {
            let json = serde_json::to_string(&text).unwrap();
            let escaped = escape_json(&json);
            prop_assert!(!escaped.chars().any(is_unsafe));
            prop_assert_eq!(serde_json::from_str::<String>(&escaped).unwrap(), text);
        }
    }
}
