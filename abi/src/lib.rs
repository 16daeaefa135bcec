//! The contract between the wasmpool host and a task module, version 1.
//!
//! Both sides depend on this crate, so the names, numbers and record layout
//! below exist exactly once. `docs/abi.md` describes the same contract in
//! prose, for guests written in other languages.
//!
//! In short: the host writes a task's postcard-encoded arguments into a
//! buffer it obtained from [`ALLOC_EXPORT`], calls the task's export
//! ([`TASK_EXPORT_PREFIX`] + name), and reads a [`ResultHeader`] from the
//! pointer that export returns. The module lists its tasks in the custom
//! section [`TASKS_SECTION`] as a sequence of [`TaskDescriptor`] records.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The ABI version this crate describes; a module reports its own through
/// [`ABI_VERSION_EXPORT`] and the host refuses any other.
pub const ABI_VERSION: u32 = 1;

/// Export `() -> i32`: the ABI version the module implements.
pub const ABI_VERSION_EXPORT: &str = "wasmpool_abi_version";

/// Export `(len: i32) -> i32`: allocates `len` bytes in guest memory for a
/// task's arguments and returns their address (0 if allocation failed).
pub const ALLOC_EXPORT: &str = "wasmpool_alloc";

/// The linear memory every module exports under this name.
pub const MEMORY_EXPORT: &str = "memory";

/// Prefix of each task's export `(args_ptr: i32, args_len: i32) -> i32`.
pub const TASK_EXPORT_PREFIX: &str = "wasmpool_task_";

/// Prefix of each task's optional JSON entry point, with the same type and
/// result header as the task's own export: its arguments are UTF-8 JSON (the
/// bare value for one argument, an array for several, `null` or `[]` for
/// none) and so is its result. The Rust SDK adds one per task; the host uses
/// it for callers that speak JSON, such as the `wasmpool` command.
pub const JSON_EXPORT_PREFIX: &str = "wasmpool_json_";

/// Name of the custom section holding the module's [`TaskDescriptor`]s.
pub const TASKS_SECTION: &str = "wasmpool.tasks";

/// Import module name of the host functions the SDK may call.
pub const HOST_MODULE: &str = "wasmpool";

/// Host function `(msg_ptr, msg_len, file_ptr, file_len, line, column)`, all
/// `i32`: records a panic's message and location just before the guest traps.
pub const PANIC_IMPORT: &str = "panic";

/// Host function `() -> i64`: the running task's seed (see
/// `docs/semantics.md`), from which the SDK keys the task's generator.
pub const TASK_SEED_IMPORT: &str = "task_seed";

/// Host function `(msg_ptr, msg_len: i32) -> i32`: sends one
/// postcard-encoded message to the host while the task runs. Returns one of
/// [`send_status`]; the host may make the guest wait for room first.
pub const SEND_IMPORT: &str = "send";

/// Host function `(done, total: i64)`: reports the running task's
/// progress (unsigned numbers in the task's own units).
pub const PROGRESS_IMPORT: &str = "progress";

/// What [`SEND_IMPORT`] returns.
pub mod send_status {
    /// The host took the message.
    pub const DELIVERED: i32 = 0;
    /// Nobody listens to this task's messages: the host dropped it.
    pub const NOBODY_LISTENS: i32 = 1;
}

/// Size in bytes of the [`ResultHeader`] a task export points to.
pub const RESULT_HEADER_LEN: usize = 12;

/// Largest valid task name, in bytes.
pub const MAX_TASK_NAME_LEN: usize = 200;

/// Status codes in a [`ResultHeader`].
pub mod status {
    /// The task returned; the payload is its postcard-encoded result.
    pub const OK: u32 = 0;
    /// The task returned `Err`; the payload is the error's UTF-8 message.
    pub const TASK_ERROR: u32 = 1;
    /// The arguments did not decode; the payload is a UTF-8 explanation.
    pub const BAD_ARGUMENTS: u32 = 2;
}

/// The export name of the task called `task`.
pub fn task_export_name(task: &str) -> String {
    let mut name = String::with_capacity(TASK_EXPORT_PREFIX.len() + task.len());
    name.push_str(TASK_EXPORT_PREFIX);
    name.push_str(task);
    name
}

/// The export name of the JSON entry point of the task called `task`.
pub fn json_export_name(task: &str) -> String {
    let mut name = String::with_capacity(JSON_EXPORT_PREFIX.len() + task.len());
    name.push_str(JSON_EXPORT_PREFIX);
    name.push_str(task);
    name
}

/// Whether `name` is a valid task name: 1 to [`MAX_TASK_NAME_LEN`] bytes of
/// ASCII letters, digits and `_`, not starting with a digit.
pub fn is_valid_task_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TASK_NAME_LEN
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// The three little-endian `u32`s a task export's return value points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultHeader {
    /// One of the [`status`] codes.
    pub status: u32,
    /// Address of the payload in guest memory.
    pub payload_ptr: u32,
    /// Length of the payload in bytes.
    pub payload_len: u32,
}

impl ResultHeader {
    /// Decodes a header from its [`RESULT_HEADER_LEN`] bytes.
    pub fn from_bytes(bytes: [u8; RESULT_HEADER_LEN]) -> Self {
        let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        ResultHeader { status: word(0), payload_ptr: word(4), payload_len: word(8) }
    }

    /// Encodes the header as the guest lays it out in memory.
    pub fn to_bytes(self) -> [u8; RESULT_HEADER_LEN] {
        let mut out = [0u8; RESULT_HEADER_LEN];
        out[0..4].copy_from_slice(&self.status.to_le_bytes());
        out[4..8].copy_from_slice(&self.payload_ptr.to_le_bytes());
        out[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        out
    }
}

/// Version of the [`TaskDescriptor`] record layout.
pub const DESCRIPTOR_VERSION: u8 = 1;

/// One task as the module describes it in [`TASKS_SECTION`].
///
/// Records are postcard-encoded and simply concatenated (the linker joins
/// the sections of every `#[task]`), which works because postcard records
/// are self-delimiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDescriptor {
    /// Always [`DESCRIPTOR_VERSION`]; checked before the rest is trusted.
    pub version: u8,
    /// The task's name, as passed to the host's `call` and `map`.
    pub name: String,
    /// The parameters, in order.
    pub params: Vec<ParamDescriptor>,
    /// The result type as written in the source (`()` when none).
    pub result: String,
    /// The task's doc comment, possibly empty.
    pub doc: String,
}

/// One parameter of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDescriptor {
    /// The parameter's name (or pattern) as written in the source.
    pub name: String,
    /// Its type as written in the source.
    pub ty: String,
}

/// Why the task section could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// A record did not decode at this byte offset.
    Malformed {
        /// Offset of the record within the section.
        offset: usize,
    },
    /// A record has a [`TaskDescriptor::version`] this crate does not know.
    UnknownVersion {
        /// The version found.
        version: u8,
    },
    /// A task name breaks [`is_valid_task_name`].
    InvalidName {
        /// The offending name (its first [`MAX_TASK_NAME_LEN`] characters).
        name: String,
    },
    /// Two records describe the same task.
    Duplicate {
        /// The repeated name.
        name: String,
    },
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ManifestError::Malformed { offset } => {
                write!(f, "malformed task record at byte {offset} of section `{TASKS_SECTION}`")
            }
            ManifestError::UnknownVersion { version } => {
                write!(f, "task record version {version} is not supported (expected {DESCRIPTOR_VERSION})")
            }
            ManifestError::InvalidName { name } => write!(f, "invalid task name {name:?}"),
            ManifestError::Duplicate { name } => write!(f, "task `{name}` is described twice"),
        }
    }
}

impl TaskDescriptor {
    /// The record's postcard encoding, as it goes into [`TASKS_SECTION`].
    pub fn encode(&self) -> Vec<u8> {
        // Encoding plain strings and vectors into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }
}

/// Reads every record of a [`TASKS_SECTION`] (the concatenation of all such
/// sections in the module), validating versions and names. The section
/// comes from an untrusted module, so the work is O(n log n) in the number
/// of records: a set of the names seen finds a repeated one.
pub fn decode_manifest(mut section: &[u8]) -> Result<Vec<TaskDescriptor>, ManifestError> {
    let total = section.len();
    let mut tasks: Vec<TaskDescriptor> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while !section.is_empty() {
        let offset = total - section.len();
        // Check the version byte first so a future layout gives a clear error.
        if section[0] != DESCRIPTOR_VERSION {
            return Err(ManifestError::UnknownVersion { version: section[0] });
        }
        let (task, rest) =
            postcard::take_from_bytes::<TaskDescriptor>(section).map_err(|_| ManifestError::Malformed { offset })?;
        if !is_valid_task_name(&task.name) {
            // The name may be megabytes long: keep its start.
            let name = task.name.chars().take(MAX_TASK_NAME_LEN).collect();
            return Err(ManifestError::InvalidName { name });
        }
        if !seen.insert(task.name.clone()) {
            return Err(ManifestError::Duplicate { name: task.name });
        }
        tasks.push(task);
        section = rest;
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn descriptor(name: &str) -> TaskDescriptor {
        TaskDescriptor {
            version: DESCRIPTOR_VERSION,
            name: name.into(),
            params: vec![ParamDescriptor { name: "x".into(), ty: "u32".into() }],
            result: "f64".into(),
            doc: "Square root.".into(),
        }
    }

    #[test]
    fn concatenated_records_decode_in_order() {
        let mut section = descriptor("sqrt").encode();
        section.extend(descriptor("cube").encode());
        let tasks = decode_manifest(&section).unwrap();
        assert_eq!(tasks, vec![descriptor("sqrt"), descriptor("cube")]);
    }

    #[test]
    fn empty_section_has_no_tasks() {
        assert_eq!(decode_manifest(&[]).unwrap(), vec![]);
    }

    #[test]
    fn duplicates_unknown_versions_and_bad_names_are_refused() {
        let mut twice = descriptor("a").encode();
        twice.extend(descriptor("a").encode());
        assert_eq!(decode_manifest(&twice), Err(ManifestError::Duplicate { name: "a".into() }));

        let mut future = descriptor("a");
        future.version = 9;
        assert_eq!(decode_manifest(&future.encode()), Err(ManifestError::UnknownVersion { version: 9 }));

        assert_eq!(
            decode_manifest(&descriptor("not-valid").encode()),
            Err(ManifestError::InvalidName { name: "not-valid".into() })
        );
    }

    #[test]
    fn truncated_record_is_malformed() {
        let mut section = descriptor("sqrt").encode();
        let whole = section.len();
        section.extend(descriptor("cube").encode());
        section.truncate(section.len() - 3);
        assert_eq!(decode_manifest(&section), Err(ManifestError::Malformed { offset: whole }));
    }

    #[test]
    fn header_round_trips() {
        let h = ResultHeader { status: 2, payload_ptr: 0xdead_beef, payload_len: 7 };
        assert_eq!(ResultHeader::from_bytes(h.to_bytes()), h);
    }

    #[test]
    fn task_names() {
        assert!(is_valid_task_name("mandel_row"));
        assert!(is_valid_task_name("_x9"));
        assert!(!is_valid_task_name(""));
        assert!(!is_valid_task_name("9lives"));
        assert!(!is_valid_task_name("a b"));
        assert_eq!(task_export_name("sqrt"), "wasmpool_task_sqrt");
        assert_eq!(json_export_name("sqrt"), "wasmpool_json_sqrt");
    }

    proptest! {
        /// The decoder reads bytes a guest controls: it must never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_manifest(&bytes);
        }

        #[test]
        fn any_valid_records_round_trip(
            names in proptest::collection::btree_set("[a-z_][a-z0-9_]{0,20}", 0..6),
            doc in ".{0,40}",
        ) {
            let records: Vec<TaskDescriptor> = names
                .iter()
                .map(|n| TaskDescriptor { doc: doc.clone(), ..descriptor(n) })
                .collect();
            let section: Vec<u8> = records.iter().flat_map(|r| r.encode()).collect();
            prop_assert_eq!(decode_manifest(&section).unwrap(), records);
        }
    }
}
