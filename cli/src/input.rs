//! Reading `run`'s input: one JSON value per line, from a file or stdin.

use crate::journal::Done;
use anyhow::{Context, Result};
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

    /// The number of non-blank lines, for a file (a first, quick pass);
    /// `None` for stdin, which can be read only once.
    pub fn count(&self) -> Result<Option<usize>> {
        let Source::File(_) = self else { return Ok(None) };
        let mut reader = self.open()?;
        let mut line = Vec::new();
        let mut count = 0;
        while reader.read_until(b'\n', &mut line).with_context(|| self.describe())? > 0 {
            count += usize::from(!is_blank(&line));
            line.clear();
        }
        Ok(Some(count))
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
        assert_eq!(Source::new(Some(&path)).count().unwrap(), Some(3));
        assert_eq!(Source::new(Some(Path::new("-"))).count().unwrap(), None);
    }
}
