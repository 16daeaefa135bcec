//! The journal of a run writing to a file: every finished line recorded
//! durably, so that a run cut short (a crash, a kill, a lost rank, a
//! walltime limit) can `--resume` with each input written exactly once.
//!
//! The output file itself holds the results. Beside it, `OUTPUT.journal`
//! holds a header (what run made it) and one entry per record in the
//! output, in the output's order:
//!
//! ```text
//! "wasmpool journal 2\n"
//! one line of JSON: the run's [`Identity`] ({"module_sha256": …, "task": …,
//!                   "seed": …, "settings": …, "printed": …, "on_error": …,
//!                   "grants": …, "input": {"bytes": …, "sha256": …}})
//! entries of 20 bytes: input index (u64 LE), record length (u32 LE),
//!                      CRC-32 of the record's bytes, CRC-32 of the 16 before
//! ```
//!
//! Version 1 had no `printed`, `on_error`, `grants` or `input`: its
//! journals are refused, saying so.
//!
//! Durability: records go to the operating system at least every 100 ms
//! (the output before its entries), and to the disk (`fdatasync`) every
//! second and at the end. A process killed loses at most the last 100 ms of
//! results, which a resume runs again; a machine that loses power, at most
//! the last second. An entry counts only if its record's bytes are in the
//! output with its checksum, so a torn tail, in either file, is found and
//! cut off; no record is ever counted twice.
//!
//! The journal is input read back: both files are opened through
//! [`checked`] (no symbolic or hard links, the user's own, the journal
//! writable by nobody else), and no length in it decides an allocation:
//! a record's length must fit in what is left of the output and within
//! [`MAX_RECORD`], and its bytes are checksummed through a fixed buffer.

pub mod checked;

use crate::python_tasks::shown;
use anyhow::{Context, Result, bail};
use checked::{Access, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

const MAGIC: &[u8] = b"wasmpool journal 2\n";
/// The first version's, refused with a word of why.
const MAGIC_V1: &[u8] = b"wasmpool journal 1\n";
const ENTRY: usize = 20;
/// Longest record written or read back, newline included: 1 GiB. A longer
/// result line fails the run ("cannot write the results"), and an entry
/// claiming more is refused as damaged before a byte of the record is read.
const MAX_RECORD: u32 = 1 << 30;
/// Longest header line read back.
const MAX_HEADER: u64 = 1 << 20;
/// How often buffered records are handed to the operating system.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Every how many flushes the files are synced to the disk.
const SYNC_EVERY: u32 = 10;

/// What made a run's results: a journal made by another is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// SHA-256 of the module's bytes, in hex.
    pub module_sha256: String,
    /// The task.
    pub task: String,
    /// The pool's seed.
    pub seed: u64,
    /// The limits and the format (`--unordered`).
    pub settings: String,
    /// `--printed`: records may hold what tasks printed.
    pub printed: String,
    /// `--on-error`: whether failed lines have records.
    pub on_error: String,
    /// What tasks were granted: folders with their mode and guest path,
    /// environment variables by name with a hash of their value, clocks.
    pub grants: String,
    /// The input file, or `None` for stdin or a pipe (which cannot be
    /// resumed: nothing tells whether it is the same).
    pub input: Option<InputFile>,
}

/// An input file, as a journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// `bytes` in lowercase hex (for SHA-256 digests).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The journal file beside `output`.
pub fn path_for(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".journal");
    output.with_file_name(name)
}

/// Reads the header of the journal beside `output`: what run made it.
pub fn identity(output: &Path) -> Result<Identity> {
    let path = path_for(output);
    if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == ErrorKind::NotFound) {
        bail!("cannot resume: no journal {} (was the run to resume written to this file?)", shown(&path));
    }
    let file = checked::open(&path, Role::Journal, Access::Read).context("cannot resume")?;
    let mut reader = BufReader::new(file);
    Ok(read_header(&mut reader, &path)?.0)
}

fn read_header(reader: &mut impl BufRead, path: &Path) -> Result<(Identity, u64)> {
    let mut magic = vec![0; MAGIC.len()];
    reader.read_exact(&mut magic).ok();
    if magic == MAGIC_V1 {
        bail!(
            "cannot resume: the journal {} was written by an older wasmpool (journal version 1), which did not \
             record everything this one checks; run without --resume to start over",
            shown(path)
        );
    }
    if magic != MAGIC {
        bail!("{} is not a wasmpool journal (version 2)", path.display());
    }
    let mut line = Vec::new();
    reader.take(MAX_HEADER).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        bail!("the journal {} has a damaged header", path.display());
    }
    let identity: Identity = serde_json::from_slice(&line)
        .with_context(|| format!("the journal {} has a damaged header", path.display()))?;
    Ok((identity, (MAGIC.len() + line.len()) as u64))
}

/// One entry of the journal: an input, its record's length (newline
/// included) and the record's CRC-32; on disk followed by a CRC-32 of its
/// own 16 bytes.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    input: u64,
    len: u32,
    crc: u32,
}

impl Entry {
    fn encode(&self) -> [u8; ENTRY] {
        let mut bytes = [0u8; ENTRY];
        bytes[..8].copy_from_slice(&self.input.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.len.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.crc.to_le_bytes());
        let check = crc32fast::hash(&bytes[..16]);
        bytes[16..].copy_from_slice(&check.to_le_bytes());
        bytes
    }

    /// The entry, or `None` if its own checksum does not match (torn).
    fn decode(bytes: &[u8; ENTRY]) -> Option<Entry> {
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut input = [0u8; 8];
        input.copy_from_slice(&bytes[..8]);
        (crc32fast::hash(&bytes[..16]) == word(16)).then(|| Entry {
            input: u64::from_le_bytes(input),
            len: word(8),
            crc: word(12),
        })
    }
}

/// The inputs a journal holds results for.
#[derive(Debug, Default)]
pub struct Done {
    /// Every index below this is done.
    below: usize,
    /// Done indices at or above `below`.
    above: HashSet<usize>,
}

impl Done {
    /// Whether input `index` has its result already.
    pub fn contains(&self, index: usize) -> bool {
        index < self.below || self.above.contains(&index)
    }

    /// How many inputs are done.
    pub fn len(&self) -> usize {
        self.below + self.above.len()
    }

    fn insert(&mut self, index: usize) -> bool {
        if self.contains(index) {
            return false;
        }
        self.above.insert(index);
        while self.above.remove(&self.below) {
            self.below += 1;
        }
        true
    }
}

/// The output file and its journal, being written.
pub struct Journal {
    files: Arc<Mutex<Files>>,
    stop: Arc<AtomicBool>,
    flusher: Option<JoinHandle<()>>,
}

struct Files {
    output: BufWriter<File>,
    index: BufWriter<File>,
    dirty: bool,
    flushes: u32,
    /// A write the flusher thread could not do.
    failed: Option<std::io::Error>,
}

impl Files {
    fn flush(&mut self) -> std::io::Result<()> {
        // The records before the entries that count them.
        self.output.flush()?;
        self.index.flush()?;
        self.dirty = false;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.output.get_ref().sync_data()?;
        self.index.get_ref().sync_data()
    }
}

impl Journal {
    /// Starts `output` and its journal afresh: both opened and checked
    /// ([`checked::open`]) before either is emptied.
    pub fn create(output: &Path, identity: &Identity) -> Result<Journal> {
        let path = path_for(output);
        let out = checked::open(output, Role::Output, Access::Create)?;
        let mut index = checked::open(&path, Role::Journal, Access::Create)?;
        out.set_len(0).with_context(|| format!("cannot empty the output {}", shown(output)))?;
        index.set_len(0).with_context(|| format!("cannot empty the journal {}", shown(&path)))?;
        checked::make_private(&index, &path)?;
        let mut header = MAGIC.to_vec();
        header.extend(serde_json::to_vec(identity)?);
        header.push(b'\n');
        index.write_all(&header).with_context(|| format!("cannot write journal {}", path.display()))?;
        Ok(Journal::start(out, index))
    }

    /// Opens `output` and its journal to go on where a run of the same
    /// `identity` stopped: checks every entry against the output's bytes,
    /// cuts both files after the last whole record, and returns what is
    /// done. `ordered`: the records must be inputs 0, 1, 2, … in turn;
    /// `inputs`: how many inputs there are, if known. A journal holding an
    /// entry no run writes (a record over [`MAX_RECORD`], an input past the
    /// last) is refused, and neither file is changed.
    pub fn resume(output: &Path, identity: &Identity, ordered: bool, inputs: Option<usize>) -> Result<(Journal, Done)> {
        let path = path_for(output);
        let mut index = checked::open(&path, Role::Journal, Access::Resume).context("cannot resume")?;
        let mut out = checked::open(output, Role::Output, Access::Resume).context("cannot resume")?;
        let mut reader = BufReader::new(&mut index);
        let (theirs, header_len) = read_header(&mut reader, &path)?;
        refuse_other(&theirs, identity, &path)?;
        let output_len = out.metadata().with_context(|| format!("cannot read output {}", shown(output)))?.len();
        let expect = Expect { ordered, inputs, output_len };
        let mut records = BufReader::with_capacity(1 << 16, &mut out);
        let Vouched { entries, end, done } = match vouched(&mut reader, &mut records, expect) {
            Ok(vouched) => vouched,
            Err(Stop::ReadJournal(e)) => {
                return Err(e).with_context(|| format!("cannot resume: cannot read the journal {}", shown(&path)));
            }
            Err(Stop::ReadOutput(e)) => {
                return Err(e).with_context(|| format!("cannot resume: cannot read the output {}", shown(output)));
            }
            Err(Stop::Damaged { entry, why }) => bail!(
                "cannot resume: the journal {} is damaged, or was tampered with: its entry {entry} claims {why}; \
                 nothing was changed. Run without --resume to start over",
                shown(&path)
            ),
        };
        drop(records);
        drop(reader);
        if end < output_len {
            tracing::info!(
                kept = end,
                cut = output_len - end,
                "the output's tail is not vouched for: cut, its lines run again"
            );
        }
        // Everything after the last whole record, in either file, is torn.
        out.set_len(end).with_context(|| format!("cannot repair output {}", shown(output)))?;
        out.seek(SeekFrom::Start(end))?;
        index.set_len(header_len + entries * ENTRY as u64)?;
        index.seek(SeekFrom::End(0))?;
        Ok((Journal::start(out, index), done))
    }

    fn start(output: File, index: File) -> Journal {
        let files = Arc::new(Mutex::new(Files {
            output: BufWriter::with_capacity(1 << 16, output),
            index: BufWriter::with_capacity(1 << 14, index),
            dirty: false,
            flushes: 0,
            failed: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_files, thread_stop) = (files.clone(), stop.clone());
        let flusher = std::thread::Builder::new()
            .name("wasmpool-journal".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(FLUSH_EVERY);
                    let mut files = thread_files.lock().unwrap_or_else(PoisonError::into_inner);
                    if !files.dirty || files.failed.is_some() {
                        continue;
                    }
                    files.flushes += 1;
                    let written = if files.flushes % SYNC_EVERY == 0 { files.sync() } else { files.flush() };
                    if let Err(e) = written {
                        files.failed = Some(e);
                    }
                }
            })
            .ok();
        Journal { files, stop, flusher }
    }

    /// Writes input `index`'s record (a line, without its newline).
    pub fn record(&mut self, index: usize, line: &str) -> std::io::Result<()> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = files.failed.take() {
            return Err(e);
        }
        let len32 = record_len(line.len() + 1)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
        let entry = Entry { input: index as u64, len: len32, crc: hasher.finalize() };
        files.output.write_all(line.as_bytes())?;
        files.output.write_all(b"\n")?;
        files.index.write_all(&entry.encode())?;
        files.dirty = true;
        Ok(())
    }

    /// Writes everything out and syncs it to the disk.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.flusher.take() {
            let _ = thread.join();
        }
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = files.failed.take() {
            return Err(e);
        }
        files.sync()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A record's length (newline included) as its entry holds it, if it is
/// within [`MAX_RECORD`].
fn record_len(len: usize) -> std::io::Result<u32> {
    match u32::try_from(len) {
        Ok(len32) if len32 <= MAX_RECORD => Ok(len32),
        _ => Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "a result line of {len} bytes, more than a journaled output holds ({MAX_RECORD} bytes); \
                 write such results to stdout, which keeps no journal"
            ),
        )),
    }
}

/// What the entries of a journal must agree with.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// The records are inputs 0, 1, 2, … in turn.
    ordered: bool,
    /// How many inputs there are, if known.
    inputs: Option<usize>,
    /// The output's length.
    output_len: u64,
}

/// What the entries of a journal vouch for.
#[derive(Debug)]
struct Vouched {
    /// How many entries count.
    entries: u64,
    /// Where the last record they vouch for ends in the output.
    end: u64,
    /// The inputs they hold results for.
    done: Done,
}

/// Why [`vouched`] stopped short of an answer.
#[derive(Debug)]
enum Stop {
    /// The journal could not be read.
    ReadJournal(std::io::Error),
    /// The output could not be read.
    ReadOutput(std::io::Error),
    /// An entry no run writes.
    Damaged {
        /// Which (from 1).
        entry: u64,
        /// What it claims, in words.
        why: String,
    },
}

/// What to make of one entry, before reading its record.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Its record is to be read and checked; it is for this input.
    Check(usize),
    /// It cannot be whole where it is (past the output's end, an input
    /// already done or out of turn): the journal's torn tail starts here,
    /// as a crash or a power cut leaves it.
    Torn,
    /// No run writes it: why.
    Impossible(String),
}

/// Reads `journal`'s entries after its header and checks each against
/// the next record of `output`, up to the first that does not count.
fn vouched(journal: &mut impl Read, output: &mut impl Read, expect: Expect) -> Result<Vouched, Stop> {
    let mut vouched = Vouched { entries: 0, end: 0, done: Done::default() };
    while let Some(entry) = next_entry(journal).map_err(Stop::ReadJournal)? {
        let input = match judge(&entry, vouched.end, &vouched.done, expect) {
            Verdict::Check(input) => input,
            Verdict::Torn => break,
            Verdict::Impossible(why) => return Err(Stop::Damaged { entry: vouched.entries + 1, why }),
        };
        if !record_matches(output, entry.len, entry.crc).map_err(Stop::ReadOutput)? {
            break;
        }
        vouched.done.insert(input);
        vouched.entries += 1;
        vouched.end += u64::from(entry.len);
    }
    Ok(vouched)
}

/// The next entry, or `None` at the journal's end or at a torn entry (cut
/// short, or its own checksum wrong).
fn next_entry(journal: &mut impl Read) -> std::io::Result<Option<Entry>> {
    let mut bytes = [0u8; ENTRY];
    match journal.read_exact(&mut bytes) {
        Ok(()) => Ok(Entry::decode(&bytes)),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `entry`, after records ending at `end`, with `done` done, may
/// count: its record read next.
fn judge(entry: &Entry, end: u64, done: &Done, expect: Expect) -> Verdict {
    if entry.len > MAX_RECORD {
        return Verdict::Impossible(format!(
            "a record of {} bytes, more than any run writes ({MAX_RECORD} bytes)",
            entry.len
        ));
    }
    if let Some(inputs) = expect.inputs
        && entry.input >= inputs as u64
    {
        return Verdict::Impossible(format!("input #{} (from 0), but the input has {inputs} lines", entry.input));
    }
    // A record can be no longer than what is left of the output.
    if entry.len < 2 || end.saturating_add(u64::from(entry.len)) > expect.output_len {
        return Verdict::Torn;
    }
    let Ok(input) = usize::try_from(entry.input) else { return Verdict::Torn };
    if (expect.ordered && input != done.len()) || done.contains(input) {
        return Verdict::Torn;
    }
    Verdict::Check(input)
}

/// Whether the next `len` bytes of `output` have the CRC-32 `crc`: read
/// through a fixed buffer, so the length decides no allocation.
fn record_matches(output: &mut impl Read, len: u32, crc: u32) -> std::io::Result<bool> {
    let mut hasher = CrcWriter(crc32fast::Hasher::new());
    let read = std::io::copy(&mut (&mut *output).take(u64::from(len)), &mut hasher)?;
    Ok(read == u64::from(len) && hasher.0.finalize() == crc)
}

/// A `Write` that only computes the CRC-32 of what it is given.
struct CrcWriter(crc32fast::Hasher);

impl Write for CrcWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses to go on with a journal another run made, saying what differs.
fn refuse_other(theirs: &Identity, ours: &Identity, path: &Path) -> Result<()> {
    let what = differences(theirs, ours);
    if what.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot resume: the journal {} was made with {}; run without --resume to start over",
        shown(path),
        what.join("; ")
    )
}

/// What differs between the run that made a journal (`theirs`) and this
/// one, each in words naming the journal's; nothing for the same run.
fn differences(theirs: &Identity, ours: &Identity) -> Vec<String> {
    use wasmpool::text::escape_line;
    let mut what = Vec::new();
    if theirs.module_sha256 != ours.module_sha256 {
        what.push("another module (its bytes differ)".to_owned());
    }
    if theirs.task != ours.task {
        what.push(format!("another task (`{}`)", escape_line(&theirs.task)));
    }
    if theirs.seed != ours.seed {
        what.push(format!("another seed ({}; leave out --seed to resume with it)", theirs.seed));
    }
    if theirs.settings != ours.settings {
        what.push(format!("other settings ({})", escape_line(&theirs.settings)));
    }
    if theirs.printed != ours.printed {
        what.push(format!("another --printed ({})", escape_line(&theirs.printed)));
    }
    if theirs.on_error != ours.on_error {
        what.push(format!("another --on-error ({})", escape_line(&theirs.on_error)));
    }
    if theirs.grants != ours.grants {
        what.push(format!("other grants ({})", escape_line(&theirs.grants)));
    }
    if theirs.input != ours.input {
        what.push(match &theirs.input {
            None => "its input read from stdin or a pipe, which cannot be checked".to_owned(),
            Some(input) => format!(
                "another input ({} bytes, SHA-256 {}…; this one differs)",
                input.bytes,
                escape_line(input.sha256.get(..16).unwrap_or(input.sha256.as_str()))
            ),
        });
    }
    what
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn identity() -> Identity {
        Identity {
            module_sha256: "ab".into(),
            task: "sqrt".into(),
            seed: 7,
            settings: "ordered".into(),
            printed: "stderr".into(),
            on_error: "stop".into(),
            grants: "none".into(),
            input: Some(InputFile { bytes: 6, sha256: "0123456789abcdef0123".into() }),
        }
    }

    fn write(dir: &Path, records: &[(usize, &str)]) -> PathBuf {
        let output = dir.join("out.jsonl");
        let mut journal = Journal::create(&output, &identity()).unwrap();
        for (index, line) in records {
            journal.record(*index, line).unwrap();
        }
        journal.finish().unwrap();
        output
    }

    fn append(path: &Path, bytes: &[u8]) {
        OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    fn refusal(output: &Path, identity: &Identity) -> String {
        Journal::resume(output, identity, true, None).err().map(|e| format!("{e:#}")).unwrap_or_default()
    }

    #[test]
    fn a_whole_journal_resumes_where_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1"), (1, "2"), (2, "3")]);
        let (mut journal, done) = Journal::resume(&output, &identity(), true, Some(5)).unwrap();
        assert_eq!(done.len(), 3);
        journal.record(3, "4").unwrap();
        journal.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "1\n2\n3\n4\n");
        let (_, done) = Journal::resume(&output, &identity(), true, Some(5)).unwrap();
        assert_eq!(done.len(), 4);
    }

    #[test]
    fn a_torn_tail_is_cut_in_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "10"), (1, "20"), (2, "30")]);
        // Half a record written after the last entry, and half an entry.
        append(&output, b"4");
        append(&path_for(&output), &[1, 2, 3]);
        let (journal, done) = Journal::resume(&output, &identity(), true, None).unwrap();
        drop(journal);
        assert_eq!(done.len(), 3);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "10\n20\n30\n");
        // A record whose bytes changed no longer counts, nor anything after it.
        let mut bytes = std::fs::read(&output).unwrap();
        bytes[3] = b'9';
        std::fs::write(&output, bytes).unwrap();
        let (_, done) = Journal::resume(&output, &identity(), true, None).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "10\n");
    }

    #[test]
    fn an_entry_of_zeros_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        append(&path_for(&output), &[0; ENTRY]);
        let (_, done) = Journal::resume(&output, &identity(), true, None).unwrap();
        assert_eq!(done.len(), 1);
        let header = MAGIC.len() + serde_json::to_vec(&identity()).unwrap().len() + 1;
        assert_eq!(std::fs::metadata(path_for(&output)).unwrap().len(), (header + ENTRY) as u64, "cut off");
    }

    #[test]
    fn an_entry_longer_than_the_output_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        // A well-formed entry whose record never reached the output (a
        // power cut can leave one).
        let entry = Entry { input: 1, len: 100, crc: 0 };
        assert_eq!(Entry::decode(&entry.encode()), Some(Entry { input: 1, len: 100, crc: 0 }));
        append(&path_for(&output), &entry.encode());
        let (_, done) = Journal::resume(&output, &identity(), true, None).unwrap();
        assert_eq!(done.len(), 1);
    }

    #[test]
    fn an_entry_no_run_writes_is_refused_and_nothing_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        // A record of 4 GiB - 1 bytes, behind an output long enough to
        // hold it (sparse where the platform allows): refused before a
        // byte of it is read.
        if cfg!(unix) {
            OpenOptions::new().write(true).open(&output).unwrap().set_len(5 << 30).unwrap();
        }
        let output_len = std::fs::metadata(&output).unwrap().len();
        append(&path_for(&output), &Entry { input: 1, len: u32::MAX, crc: 0 }.encode());
        let journal_len = std::fs::metadata(path_for(&output)).unwrap().len();
        let started = std::time::Instant::now();
        let message = refusal(&output, &identity());
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(
            message.contains("is damaged, or was tampered with: its entry 2 claims a record of 4294967295 bytes"),
            "{message}"
        );
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(std::fs::metadata(&output).unwrap().len(), output_len, "the output is as it was");
        assert_eq!(std::fs::metadata(path_for(&output)).unwrap().len(), journal_len, "and so is the journal");
        // An input past the input's last.
        let output = write(dir.path(), &[(0, "1"), (1, "2")]);
        let message = Journal::resume(&output, &identity(), true, Some(1)).err().map(|e| e.to_string());
        assert!(
            message.unwrap_or_default().contains("its entry 2 claims input #1 (from 0), but the input has 1 lines")
        );
    }

    #[test]
    fn judging_an_entry_before_its_record_is_read() {
        let expect = Expect { ordered: true, inputs: Some(10), output_len: 100 };
        let entry = |input, len| Entry { input, len, crc: 0 };
        let mut done = Done::default();
        assert_eq!(judge(&entry(0, 10), 0, &done, expect), Verdict::Check(0));
        assert_eq!(judge(&entry(0, 100), 0, &done, expect), Verdict::Check(0), "exactly the rest of the output");
        assert_eq!(judge(&entry(0, 101), 0, &done, expect), Verdict::Torn);
        assert_eq!(judge(&entry(0, 10), 95, &done, expect), Verdict::Torn);
        assert_eq!(judge(&entry(0, 1), 0, &done, expect), Verdict::Torn, "no record is shorter than 2 bytes");
        assert_eq!(judge(&entry(1, 10), 0, &done, expect), Verdict::Torn, "out of turn");
        assert!(matches!(judge(&entry(0, MAX_RECORD + 1), 0, &done, expect), Verdict::Impossible(_)));
        assert!(matches!(judge(&entry(10, 10), 0, &done, expect), Verdict::Impossible(_)));
        assert!(matches!(judge(&entry(u64::MAX, 10), 0, &done, expect), Verdict::Impossible(_)));
        done.insert(0);
        assert_eq!(judge(&entry(0, 10), 10, &done, Expect { ordered: false, ..expect }), Verdict::Torn, "twice");
        assert_eq!(
            judge(&entry(7, 10), 10, &done, Expect { ordered: false, inputs: None, ..expect }),
            Verdict::Check(7)
        );
    }

    #[test]
    fn a_record_is_checked_through_a_fixed_buffer() {
        let bytes = b"12\n34\n".to_vec();
        let mut reader = std::io::Cursor::new(bytes);
        assert!(record_matches(&mut reader, 3, crc32fast::hash(b"12\n")).unwrap());
        assert!(!record_matches(&mut reader, 3, crc32fast::hash(b"35\n")).unwrap());
        // Shorter than claimed: no match, and nothing of the claimed size held.
        let mut reader = std::io::Cursor::new(b"12\n".to_vec());
        assert!(!record_matches(&mut reader, MAX_RECORD, crc32fast::hash(b"12\n")).unwrap());
    }

    #[test]
    fn the_writer_keeps_to_the_maximum_the_reader_checks() {
        assert_eq!(record_len(2).unwrap(), 2);
        assert_eq!(record_len(MAX_RECORD as usize).unwrap(), MAX_RECORD);
        let error = record_len(MAX_RECORD as usize + 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("more than a journaled output holds"), "{error}");
        assert!(record_len(usize::MAX).is_err());
    }

    #[test]
    fn unordered_records_leave_gaps_that_are_not_done() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(2, "c"), (0, "a"), (5, "f")]);
        let (_, done) = Journal::resume(&output, &identity(), false, Some(6)).unwrap();
        assert!(done.contains(0) && done.contains(2) && done.contains(5));
        assert!(!done.contains(1) && !done.contains(3) && !done.contains(4));
        // In input order, input 2 cannot come first.
        let (_, done) = Journal::resume(&output, &identity(), true, Some(6)).unwrap();
        assert_eq!(done.len(), 0);
    }

    #[test]
    fn another_run_s_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        let other = Identity { seed: 8, ..identity() };
        assert!(refusal(&output, &other).contains("another seed (7"));
        let other = Identity { module_sha256: "cd".into(), ..identity() };
        assert!(refusal(&output, &other).contains("another module"));
        let other = Identity { task: "add".into(), ..identity() };
        assert!(refusal(&output, &other).contains("another task"));
        let other = Identity { settings: "unordered".into(), ..identity() };
        assert!(refusal(&output, &other).contains("other settings"));
        std::fs::write(path_for(&output), b"not a journal").unwrap();
        assert!(identity_of(&output).contains("not a wasmpool journal"));
        std::fs::write(path_for(&output), b"wasmpool journal 1\n{}\n").unwrap();
        assert!(identity_of(&output).contains("an older wasmpool (journal version 1)"));
    }

    #[test]
    fn every_difference_that_changes_the_output_is_named() {
        let ours = identity();
        assert!(differences(&ours, &ours).is_empty());
        let theirs = Identity {
            printed: "records".into(),
            on_error: "continue".into(),
            grants: "env KEY=sha256:0011".into(),
            input: Some(InputFile { bytes: 7, sha256: "fedcba9876543210fedc".into() }),
            ..identity()
        };
        assert_eq!(
            differences(&theirs, &ours),
            [
                "another --printed (records)",
                "another --on-error (continue)",
                "other grants (env KEY=sha256:0011)",
                "another input (7 bytes, SHA-256 fedcba9876543210…; this one differs)",
            ]
        );
        let from_stdin = Identity { input: None, ..identity() };
        assert_eq!(differences(&from_stdin, &ours), ["its input read from stdin or a pipe, which cannot be checked"]);
    }

    #[test]
    fn a_journal_is_opened_checked() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        #[cfg(not(unix))]
        let _ = output;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_for(&output)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the journal is private");
            std::fs::set_permissions(path_for(&output), std::fs::Permissions::from_mode(0o662)).unwrap();
            let message = super::identity(&output).err().map(|e| format!("{e:#}")).unwrap_or_default();
            assert!(message.contains("other users may write to it"), "{message}");
            assert!(refusal(&output, &identity()).contains("other users may write to it"));
            // A fresh run makes it private again.
            drop(Journal::create(&output, &identity()).unwrap());
            assert!(Journal::resume(&output, &identity(), true, None).is_ok());
        }
        let missing = dir.path().join("never.jsonl");
        assert!(identity_of(&missing).contains("no journal"));
    }

    fn identity_of(output: &Path) -> String {
        super::identity(output).err().map(|e| e.to_string()).unwrap_or_default()
    }
}
