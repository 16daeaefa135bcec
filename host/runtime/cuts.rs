//! How much of the text a guest hands back the host keeps: its panic and
//! error messages, file names, function names, exception tracebacks. The
//! same cuts for core modules and task components, in thread workers and
//! worker processes; escaping for a terminal happens where text is shown
//! (`crate::text`).

/// Longest panic, exception or error message kept, in bytes; the rest is
/// cut off.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// Longest panic file name (or exception location) kept, in bytes.
pub(crate) const MAX_PANIC_FILE: usize = 4 * 1024;
/// Longest function name kept in a trap's backtrace, in bytes (the name
/// section is the guest's: a name may be megabytes long).
pub(crate) const MAX_FRAME_NAME: usize = 1024;

/// `text` cut to [`MAX_MESSAGE`] bytes, saying how much was cut.
pub(crate) fn capped(text: String) -> String {
    cap(text, MAX_MESSAGE)
}

/// `text` cut to at most `max` bytes (at a character boundary), saying how
/// much was cut.
pub(crate) fn cap(mut text: String, max: usize) -> String {
    let end = prefix(&text, max).len();
    if end < text.len() {
        let cut = text.len() - end;
        text.truncate(end);
        text.push_str(&format!(" … ({cut} more bytes cut)"));
    }
    text
}

/// The longest start of `text` of at most `max` bytes that ends at a
/// character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_keep_whole_characters_and_say_how_much_went() {
        assert_eq!(cap("héllo".into(), 2), "h … (5 more bytes cut)");
        assert_eq!(cap("short".into(), 5), "short");
        assert_eq!(prefix("héllo", 3), "hé");
        assert_eq!(capped("x".repeat(MAX_MESSAGE + 3)).len(), MAX_MESSAGE + " … (3 more bytes cut)".len());
    }
}
