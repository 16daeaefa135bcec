//! Reading `run`'s input: one JSON value per line, from a file or stdin.

use crate::journal::{Done, InputFile, hex};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where the inputs come from.
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// `None` and `-` are stdin.
    pub fn new(path: Option<&Path>) -> Source {
        match path {
            Some(path) if path != Path::new("-") => Source::File(path.to_owned()),
            _ => Source::Stdin,
        }
    }

    /// Opens it for reading.
    pub fn open(&self) -> Result<Box<dyn BufRead>> {
        Ok(match self {
            Source::Stdin => Box::new(std::io::stdin().lock()),
            Source::File(path) => {
                let file = File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
                Box::new(BufReader::with_capacity(1 << 16, file))
            }
        })
    }

    /// A first, quick pass over a regular file: its non-blank lines (for
    /// the bar and the chunks), its size and, when `hash`, its SHA-256
    /// (for the journal). Read in pieces, whatever its lines' length.
    /// `None` for stdin, and for a pipe or device given as `-i` (such as
    /// bash's `<(…)`): they can be read only once.
    pub fn scan(&self, hash: bool) -> Result<Option<Scan>> {
        let Source::File(path) = self else { return Ok(None) };
        if !is_regular(path)? {
            return Ok(None);
        }
        let mut reader = self.open()?;
        let mut lines = LineCounter::default();
        let mut hasher = hash.then(Sha256::new);
        let mut bytes = 0u64;
        loop {
            let piece = reader.fill_buf().with_context(|| self.describe())?;
            if piece.is_empty() {
                break;
            }
            lines.feed(piece);
            if let Some(hasher) = &mut hasher {
                hasher.update(piece);
            }
            let len = piece.len();
            bytes += len as u64;
            reader.consume(len);
        }
        let sha256 = hasher.map(|hasher| hex(&hasher.finalize()));
        Ok(Some(Scan { lines: lines.finish(), bytes, sha256 }))
    }

    /// Refuses to resume from an input that cannot be checked against the
    /// journal's: stdin, a pipe or a device is read once, and leaves
    /// nothing to compare.
    pub fn check_resumable(&self) -> Result<()> {
        let Source::File(path) = self else {
            bail!(
                "cannot resume a run reading stdin: nothing tells whether it gives the same lines; \
                 give the input as a file (-i FILE), which the journal records by size and SHA-256"
            );
        };
        if !is_regular(path)? {
            bail!(
                "cannot resume a run reading {}, which is not a regular file: nothing tells whether it gives \
                 the same lines; give the input as a file",
                crate::python_tasks::shown(path)
            );
        }
        Ok(())
    }

    /// Whether this is the file at `path`.
    pub fn is_file(&self, path: &Path) -> bool {
        let Source::File(own) = self else { return false };
        match (own.canonicalize(), path.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// Its name in messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Stdin => "cannot read stdin".into(),
            Source::File(path) => format!("cannot read {}", path.display()),
        }
    }
}

/// What a first pass over an input file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Its non-blank lines.
    pub lines: usize,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256 in hex, when asked for.
    pub sha256: Option<String>,
}

impl Scan {
    /// The input as a journal records it (when hashed).
    pub fn as_input_file(&self) -> Option<InputFile> {
        let sha256 = self.sha256.clone()?;
        Some(InputFile { bytes: self.bytes, sha256 })
    }
}

/// Whether `path`, followed, is a regular file (not a pipe or device).
fn is_regular(path: &Path) -> Result<bool> {
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot open input {}", path.display()))?;
    Ok(metadata.is_file())
}

/// Counts non-blank lines in bytes fed piece by piece, as [`Lines`] tells
/// them apart: a line of ASCII whitespace only is blank.
#[derive(Debug, Default)]
struct LineCounter {
    /// Non-blank lines ended so far.
    lines: usize,
    /// Whether the line under way has anything but whitespace.
    filled: bool,
}

impl LineCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.lines += usize::from(self.filled);
                self.filled = false;
            } else if !byte.is_ascii_whitespace() {
                self.filled = true;
            }
        }
    }

    /// The count, the last line (without a newline) included.
    fn finish(&self) -> usize {
        self.lines + usize::from(self.filled)
    }
}

/// One input line: its number in the file (from 1) and its text.
pub struct Line {
    pub number: u64,
    pub text: Vec<u8>,
}

/// The lines sent to the pool but not yet answered, by input index, so
/// each result can name its line; bounded by the pool's window.
pub type Pending = Rc<RefCell<HashMap<usize, Line>>>;

/// The inputs of a run, as the pool pulls them: each non-blank line's
/// bytes, recorded in [`Pending`] under its index. A read error, or a line
/// longer than the limit, ends the inputs and is kept in
/// [`Lines::error_slot`].
pub struct Lines {
    reader: Box<dyn BufRead>,
    /// The longest line read, in bytes: the task's memory limit, since a
    /// longer one could not be copied into the task anyway.
    max_len: usize,
    number: u64,
    index: usize,
    remaining: Option<usize>,
    pending: Pending,
    /// Inputs a resumed run has already: skipped.
    done: Done,
    error: Rc<RefCell<Option<std::io::Error>>>,
}

impl Lines {
    /// `count`, if known, makes the size hint exact (so the pool can size
    /// its chunks). A line over `max_len` bytes is refused before it is
    /// read whole.
    /// Lines whose index is in `done` are skipped (they keep their index,
    /// so the others keep theirs).
    pub fn new(reader: Box<dyn BufRead>, count: Option<usize>, max_len: usize, pending: Pending, done: Done) -> Lines {
        Lines { reader, max_len, number: 0, index: 0, remaining: count, pending, done, error: Rc::default() }
    }

    /// Where a read error will be left.
    pub fn error_slot(&self) -> Rc<RefCell<Option<std::io::Error>>> {
        self.error.clone()
    }
}

impl Iterator for Lines {
    /// The input's index (among the non-blank lines) and its text.
    type Item = (usize, Vec<u8>);

    fn next(&mut self) -> Option<(usize, Vec<u8>)> {
        loop {
            let mut text = Vec::new();
            // One byte more than allowed, to tell a line of exactly the
            // limit from a longer one.
            let limit = (self.max_len as u64).saturating_add(1);
            match (&mut self.reader).take(limit).read_until(b'\n', &mut text) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    *self.error.borrow_mut() = Some(e);
                    return None;
                }
            }
            self.number += 1;
            if text.len() > self.max_len && text.last() != Some(&b'\n') {
                let why = format!(
                    "line {} is longer than {} bytes, the task's memory limit (--max-memory), \
                     so it cannot be passed to the task",
                    self.number, self.max_len
                );
                *self.error.borrow_mut() = Some(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
                return None;
            }
            if is_blank(&text) {
                continue;
            }
            if self.done.contains(self.index) {
                self.index += 1;
                continue;
            }
            while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                text.pop();
            }
            self.remaining = self.remaining.map(|n| n.saturating_sub(1));
            self.pending.borrow_mut().insert(self.index, Line { number: self.number, text: text.clone() });
            self.index += 1;
            return Some((self.index - 1, text));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(n) => (n, Some(n)),
            None => (0, None),
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let text = b"1\n\n  \n[2, 3]\r\n4".to_vec();
        let pending = Pending::default();
        let lines: Vec<(usize, Vec<u8>)> =
            Lines::new(Box::new(std::io::Cursor::new(text)), None, 1024, pending.clone(), Done::default()).collect();
        assert_eq!(lines, vec![(0, b"1".to_vec()), (1, b"[2, 3]".to_vec()), (2, b"4".to_vec())]);
        let pending = pending.borrow();
        assert_eq!(pending[&0].number, 1);
        assert_eq!(pending[&1].number, 4);
        assert_eq!(pending[&2].number, 5);
    }

    #[test]
    fn a_line_over_the_limit_ends_the_inputs_with_an_error() {
        let text = b"12345678\n12345678\r\n123456789\n1\n".to_vec();
        let mut lines = Lines::new(Box::new(std::io::Cursor::new(text)), None, 8, Pending::default(), Done::default());
        let error = lines.error_slot();
        assert_eq!(lines.next(), Some((0, b"12345678".to_vec())), "exactly the limit, with its newline");
        assert_eq!(lines.next(), None, "the limit and a carriage return are one byte too many");
        let message = error.borrow().as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(message.contains("line 2 is longer than 8 bytes"), "{message}");
        // Without a newline at the end, a last line of the limit is whole.
        let mut lines = Lines::new(
            Box::new(std::io::Cursor::new(b"[1, 2]".to_vec())),
            None,
            6,
            Pending::default(),
            Done::default(),
        );
        assert_eq!(lines.next(), Some((0, b"[1, 2]".to_vec())));
        assert_eq!(lines.next(), None);
        assert!(lines.error_slot().borrow().is_none());
    }

    #[test]
    fn a_known_count_is_an_exact_size_hint() {
        let lines = Lines::new(
            Box::new(std::io::Cursor::new(b"1\n2\n".to_vec())),
            Some(2),
            1024,
            Pending::default(),
            Done::default(),
        );
        assert_eq!(lines.size_hint(), (2, Some(2)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "1\n\n2\n3").unwrap();
        assert_eq!(Source::new(Some(&path)).scan(false).unwrap().map(|s| s.lines), Some(3));
        assert_eq!(Source::new(Some(Path::new("-"))).scan(true).unwrap(), None);
    }

    #[test]
    fn a_scan_counts_as_lines_are_read_in_any_pieces() {
        let text = b"1\n\n  \n[2, 3]\r\n \t\r\n4";
        let expected =
            Lines::new(Box::new(std::io::Cursor::new(text.to_vec())), None, 1024, Pending::default(), Done::default())
                .count();
        for piece in 1..=text.len() {
            let mut counter = LineCounter::default();
            text.chunks(piece).for_each(|bytes| counter.feed(bytes));
            assert_eq!(counter.finish(), expected, "pieces of {piece}");
        }
        assert_eq!(expected, 3);
    }

    #[test]
    fn a_scan_gives_the_file_s_size_and_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "abc").unwrap();
        let scan = Source::new(Some(&path)).scan(true).unwrap().unwrap();
        assert_eq!(scan.bytes, 3);
        // SHA-256("abc"), FIPS 180-2's first example.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(scan.as_input_file(), Some(InputFile { bytes: 3, sha256: abc.into() }));
        assert_eq!(Source::new(Some(&path)).scan(false).unwrap().and_then(|s| s.as_input_file()), None);
        assert!(Source::new(Some(&path)).check_resumable().is_ok());
        assert!(Source::new(None).check_resumable().unwrap_err().to_string().contains("reading stdin"));
        let missing = dir.path().join("missing.jsonl");
        assert!(Source::new(Some(&missing)).scan(true).unwrap_err().to_string().contains("cannot open input"));
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_given_as_the_input_is_not_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let path = std::ffi::CString::new(fifo.clone().into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        // Opening it to read would wait for a writer: it is not opened.
        assert_eq!(Source::new(Some(&fifo)).scan(true).unwrap(), None);
        assert!(Source::new(Some(&fifo)).check_resumable().unwrap_err().to_string().contains("not a regular file"));
    }
}
