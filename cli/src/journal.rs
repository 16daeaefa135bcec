//! The journal of a run writing to a file: every finished line recorded
//! durably, so that a run cut short (a crash, a kill, a lost rank, a
//! walltime limit) can `--resume` with each input written exactly once.
//!
//! The output file itself holds the results. Beside it, `OUTPUT.journal`
//! holds a header (what run made it) and one entry per record in the
//! output, in the output's order:
//!
//! ```text
//! "wasmpool journal 1\n"
//! one line of JSON: {"module_sha256": …, "task": …, "seed": …, "settings": …}
//! entries of 20 bytes: input index (u64 LE), record length (u32 LE),
//!                      CRC-32 of the record's bytes, CRC-32 of the 16 before
//! ```
//!
//! Durability: records go to the operating system at least every 100 ms
//! (the output before its entries), and to the disk (`fdatasync`) every
//! second and at the end. A process killed loses at most the last 100 ms of
//! results, which a resume runs again; a machine that loses power, at most
//! the last second. An entry counts only if its record's bytes are in the
//! output with its checksum, so a torn tail, in either file, is found and
//! cut off; no record is ever counted twice.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

const MAGIC: &[u8] = b"wasmpool journal 1\n";
const ENTRY: usize = 20;
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
    /// Everything else that changes the bytes written: limits, format.
    pub settings: String,
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
    let file = File::open(&path).with_context(|| {
        format!("cannot resume: no journal {} (was the run to resume written to this file?)", path.display())
    })?;
    let mut reader = BufReader::new(file);
    Ok(read_header(&mut reader, &path)?.0)
}

fn read_header(reader: &mut impl BufRead, path: &Path) -> Result<(Identity, u64)> {
    let mut magic = vec![0; MAGIC.len()];
    reader.read_exact(&mut magic).ok();
    if magic != MAGIC {
        bail!("{} is not a wasmpool journal (version 1)", path.display());
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
    /// Starts `output` and its journal afresh.
    pub fn create(output: &Path, identity: &Identity) -> Result<Journal> {
        let out = File::create(output).with_context(|| format!("cannot create output {}", output.display()))?;
        let path = path_for(output);
        let mut index = File::create(&path).with_context(|| format!("cannot create journal {}", path.display()))?;
        let mut header = MAGIC.to_vec();
        header.extend(serde_json::to_vec(identity)?);
        header.push(b'\n');
        index.write_all(&header).with_context(|| format!("cannot write journal {}", path.display()))?;
        Ok(Journal::start(out, index))
    }

    /// Opens `output` and its journal to go on where a run of the same
    /// `identity` stopped: checks every entry against the output's bytes,
    /// cuts both files after the last whole record, and returns what is
    /// done. `ordered`: the records must be inputs 0, 1, 2, … in turn.
    pub fn resume(output: &Path, identity: &Identity, ordered: bool) -> Result<(Journal, Done)> {
        let path = path_for(output);
        let mut index = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot resume: cannot open journal {}", path.display()))?;
        let mut out = OpenOptions::new()
            .read(true)
            .write(true)
            .open(output)
            .with_context(|| format!("cannot resume: cannot open output {}", output.display()))?;
        let mut reader = BufReader::new(&mut index);
        let (theirs, header_len) = read_header(&mut reader, &path)?;
        refuse_other(&theirs, identity, &path)?;
        let output_len = out.metadata().with_context(|| format!("cannot read output {}", output.display()))?.len();
        let mut records = BufReader::with_capacity(1 << 16, &mut out);
        let mut done = Done::default();
        let mut entries = 0u64;
        let mut end = 0u64;
        let mut entry = [0u8; ENTRY];
        let mut record = Vec::new();
        loop {
            match reader.read_exact(&mut entry) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e).with_context(|| format!("cannot read journal {}", path.display())),
            }
            let Some(Entry { input, len, crc }) = Entry::decode(&entry) else { break };
            let len = len as usize;
            // A record can be no longer than what is left of the output.
            if len < 2 || end + len as u64 > output_len {
                break;
            }
            record.resize(len, 0);
            if records.read_exact(&mut record).is_err() || crc32fast::hash(&record) != crc {
                break;
            }
            let Ok(input) = usize::try_from(input) else { break };
            if ordered && input != done.len() {
                break;
            }
            if !done.insert(input) {
                break;
            }
            entries += 1;
            end += len as u64;
        }
        drop(records);
        drop(reader);
        // Everything after the last whole record, in either file, is torn.
        out.set_len(end).with_context(|| format!("cannot repair output {}", output.display()))?;
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
        let len = line.len() + 1;
        let Ok(len32) = u32::try_from(len) else {
            return Err(std::io::Error::new(ErrorKind::InvalidData, "a result of 4 GiB or more"));
        };
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

/// Refuses to go on with a journal another run made, saying what differs.
fn refuse_other(theirs: &Identity, ours: &Identity, path: &Path) -> Result<()> {
    let what = if theirs.module_sha256 != ours.module_sha256 {
        "another module (its bytes differ)".to_owned()
    } else if theirs.task != ours.task {
        format!("another task (`{}`)", wasmpool::text::escape_line(&theirs.task))
    } else if theirs.seed != ours.seed {
        format!("another seed ({}; leave out --seed to resume with it)", theirs.seed)
    } else if theirs.settings != ours.settings {
        format!("other settings ({})", wasmpool::text::escape_line(&theirs.settings))
    } else {
        return Ok(());
    };
    bail!("cannot resume: the journal {} was made with {what}; run without --resume to start over", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { module_sha256: "ab".into(), task: "sqrt".into(), seed: 7, settings: "ordered".into() }
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

    #[test]
    fn a_whole_journal_resumes_where_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1"), (1, "2"), (2, "3")]);
        let (mut journal, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 3);
        journal.record(3, "4").unwrap();
        journal.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "1\n2\n3\n4\n");
        let (_, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 4);
    }

    #[test]
    fn a_torn_tail_is_cut_in_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "10"), (1, "20"), (2, "30")]);
        // Half a record written after the last entry, and half an entry.
        OpenOptions::new().append(true).open(&output).unwrap().write_all(b"4").unwrap();
        OpenOptions::new().append(true).open(path_for(&output)).unwrap().write_all(&[1, 2, 3]).unwrap();
        let (journal, done) = Journal::resume(&output, &identity(), true).unwrap();
        drop(journal);
        assert_eq!(done.len(), 3);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "10\n20\n30\n");
        // A record whose bytes changed no longer counts, nor anything after it.
        let mut bytes = std::fs::read(&output).unwrap();
        bytes[3] = b'9';
        std::fs::write(&output, bytes).unwrap();
        let (_, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "10\n");
    }

    #[test]
    fn an_entry_of_zeros_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        OpenOptions::new().append(true).open(path_for(&output)).unwrap().write_all(&[0; ENTRY]).unwrap();
        let (_, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 1);
        let header = MAGIC.len() + serde_json::to_vec(&identity()).unwrap().len() + 1;
        assert_eq!(std::fs::metadata(path_for(&output)).unwrap().len(), (header + ENTRY) as u64, "cut off");
    }

    #[test]
    fn an_entry_longer_than_the_output_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        // A well-formed entry claiming a record of 4 GiB - 1 bytes.
        let entry = Entry { input: 1, len: u32::MAX, crc: 0 };
        assert_eq!(Entry::decode(&entry.encode()), Some(Entry { input: 1, len: u32::MAX, crc: 0 }));
        OpenOptions::new().append(true).open(path_for(&output)).unwrap().write_all(&entry.encode()).unwrap();
        let (_, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 1);
    }

    #[test]
    fn unordered_records_leave_gaps_that_are_not_done() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(2, "c"), (0, "a"), (5, "f")]);
        let (_, done) = Journal::resume(&output, &identity(), false).unwrap();
        assert!(done.contains(0) && done.contains(2) && done.contains(5));
        assert!(!done.contains(1) && !done.contains(3) && !done.contains(4));
        // In input order, input 2 cannot come first.
        let (_, done) = Journal::resume(&output, &identity(), true).unwrap();
        assert_eq!(done.len(), 0);
    }

    #[test]
    fn another_run_s_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let output = write(dir.path(), &[(0, "1")]);
        let other = Identity { seed: 8, ..identity() };
        let message = Journal::resume(&output, &other, true).err().unwrap().to_string();
        assert!(message.contains("another seed (7"), "{message}");
        let other = Identity { module_sha256: "cd".into(), ..identity() };
        let message = Journal::resume(&output, &other, true).err().unwrap().to_string();
        assert!(message.contains("another module"), "{message}");
        let other = Identity { task: "add".into(), ..identity() };
        assert!(Journal::resume(&output, &other, true).err().unwrap().to_string().contains("another task"));
        let other = Identity { settings: "unordered".into(), ..identity() };
        assert!(Journal::resume(&output, &other, true).err().unwrap().to_string().contains("other settings"));
        std::fs::write(path_for(&output), b"not a journal").unwrap();
        assert!(identity_of(&output).contains("not a wasmpool journal"));
    }

    fn identity_of(output: &Path) -> String {
        super::identity(output).err().map(|e| e.to_string()).unwrap_or_default()
    }
}
