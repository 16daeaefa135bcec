//! Cranelift's incremental compilation cache on disk: the machine code of
//! each function compiled before, by a hash of its code and the compiler's
//! settings. An edit to a `tasks.py` changes little of its component (the
//! interpreter is the same), so compiling the new component takes a
//! fraction of the first compile: 2.5 s instead of 6.5 s here
//! (docs/benchmarks.md).
//!
//! The cache is one file, `incremental.bin`, in the module cache's folder,
//! and it is native code as the module cache is: it is trusted exactly as
//! a module cache entry is (`cache.rs`: a private folder, a regular file of
//! the user's that others may not write, checked through the open file, a
//! checksum), read once when the first function is looked up (never for a
//! pool whose module comes from the module cache), and written back
//! atomically after a compile that added to it. It holds at most
//! [`MAX_BYTES`]: past that, only the entries the last compile used are
//! kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_bytes::{ByteBuf, Bytes};

/// The most the file holds, in bytes of keys and values.
pub(crate) const MAX_BYTES: usize = 256 << 20;

/// Cranelift's keys: a SHA-256 of the function and the settings. The
/// cache takes no others.
const KEY_LEN: usize = 32;

/// The file's name in the cache folder.
pub(crate) const FILE: &str = "incremental.bin";

/// One entry: the compiled function, and whether this compile used it.
struct Entry {
    value: Vec<u8>,
    used: bool,
}

/// An incremental compilation cache backed by one file (see the module's
/// documentation).
#[derive(Default)]
pub(crate) struct IncrementalCache {
    /// The folder; `None` keeps the cache in memory only (tests).
    dir: Option<PathBuf>,
    entries: OnceLock<Mutex<Entries>>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Vec<u8>, Entry>,
    added: usize,
}

impl std::fmt::Debug for IncrementalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncrementalCache").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl IncrementalCache {
    /// The cache kept in `dir` (the module cache's folder).
    pub(crate) fn in_dir(dir: &Path) -> Self {
        IncrementalCache { dir: Some(dir.to_owned()), entries: OnceLock::new() }
    }

    fn entries(&self) -> &Mutex<Entries> {
        self.entries.get_or_init(|| Mutex::new(self.dir.as_deref().map(load).unwrap_or_default()))
    }

    /// Writes the cache back if this compile added to it: every entry, or
    /// only those this compile used if all would pass [`MAX_BYTES`]. Then
    /// forgets them: the engine (and this cache) may live as long as the
    /// pool.
    pub(crate) fn persist(&self) {
        let (Some(dir), Some(entries)) = (&self.dir, self.entries.get()) else { return };
        let Ok(mut entries) = entries.lock() else { return };
        let entries = std::mem::take(&mut *entries);
        if entries.added == 0 {
            return;
        }
        let size = |(key, entry): &(&Vec<u8>, &Entry)| key.len() + entry.value.len();
        let all: usize = entries.map.iter().map(|pair| size(&pair)).sum();
        // As bytes (serde_bytes): one copy per key and value, where a
        // `Vec<u8>` goes through serde one element at a time. The encoding
        // is the same (a length, then the bytes).
        let kept: Vec<(&Bytes, &Bytes)> = entries
            .map
            .iter()
            .filter(|(_, entry)| all <= MAX_BYTES || entry.used)
            .map(|(key, entry)| (Bytes::new(key), Bytes::new(&entry.value)))
            .collect();
        let payload = match postcard::to_stdvec(&kept) {
            Ok(payload) if payload.len() <= MAX_BYTES + (MAX_BYTES >> 4) => payload,
            _ => return,
        };
        if let Err(why) = super::cache::store(&dir.join(FILE), &payload) {
            tracing::warn!(dir = %dir.display(), "cannot write the incremental compilation cache: {why}");
        }
    }
}

/// The entries of the file in `dir`, if it is trusted and intact; none
/// otherwise (a bad file is rebuilt by the next compile).
fn load(dir: &Path) -> Entries {
    let path = dir.join(FILE);
    let Some(bytes) = super::cache::read_trusted(&path, (MAX_BYTES + (MAX_BYTES >> 4) + 64) as u64) else {
        return Entries::default();
    };
    let payload = match super::cache::verify(&bytes) {
        Ok(payload) => payload,
        Err(why) => {
            tracing::warn!(path = %path.display(), "corrupt incremental compilation cache, rebuilding: {why}");
            return Entries::default();
        }
    };
    // An entry takes at least 34 bytes (a key of KEY_LEN and two lengths):
    // a count past that is not a cache of ours, and would cost memory out
    // of proportion to the bytes read.
    if postcard::take_from_bytes::<u32>(payload).is_ok_and(|(count, _)| count as usize > payload.len() / (KEY_LEN + 2))
    {
        tracing::warn!(path = %path.display(), "unreadable incremental compilation cache, rebuilding");
        return Entries::default();
    }
    match postcard::from_bytes::<Vec<(ByteBuf, ByteBuf)>>(payload) {
        Ok(pairs) if pairs.iter().all(|(key, _)| key.len() == KEY_LEN) => Entries {
            map: pairs
                .into_iter()
                .map(|(key, value)| (key.into_vec(), Entry { value: value.into_vec(), used: false }))
                .collect(),
            added: 0,
        },
        Ok(_) => {
            tracing::warn!(path = %path.display(), "unreadable incremental compilation cache (keys), rebuilding");
            Entries::default()
        }
        Err(why) => {
            tracing::warn!(path = %path.display(), "unreadable incremental compilation cache, rebuilding: {why}");
            Entries::default()
        }
    }
}

impl wasmtime::CacheStore for IncrementalCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        if key.len() != KEY_LEN {
            return None;
        }
        let mut entries = self.entries().lock().ok()?;
        let entry = entries.map.get_mut(key)?;
        entry.used = true;
        Some(Cow::Owned(entry.value.clone()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        if key.len() != KEY_LEN {
            return false;
        }
        let Ok(mut entries) = self.entries().lock() else { return false };
        entries.map.insert(key.to_vec(), Entry { value, used: true });
        entries.added += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use wasmtime::CacheStore;

    /// Compiles `wat` through the cache in `dir`: how many functions it
    /// found there and how many it added.
    fn compile(dir: &Path, wat: &str) -> (usize, usize) {
        let cache = Arc::new(IncrementalCache::in_dir(dir));
        let mut config = wasmtime::Config::new();
        config.enable_incremental_compilation(cache.clone()).unwrap();
        let engine = wasmtime::Engine::new(&config).unwrap();
        wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let counts = {
            let entries = cache.entries().lock().unwrap();
            (entries.map.values().filter(|e| e.used).count() - entries.added, entries.added)
        };
        cache.persist();
        assert!(cache.entries().lock().unwrap().map.is_empty(), "forgotten once written");
        counts
    }

    #[test]
    fn a_second_compile_finds_the_functions_of_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (found, added) = compile(dir.path(), r#"(module (func (export "f") (result i32) i32.const 7))"#);
        assert!(found == 0 && added > 0);
        assert!(dir.path().join(FILE).is_file());
        // The same function beside a new one: found in the file, the new one added.
        let (found, added) = compile(
            dir.path(),
            r#"(module (func (export "f") (result i32) i32.const 7) (func (export "g") (result i32) i32.const 8))"#,
        );
        assert!(found >= 1 && added >= 1, "found {found}, added {added}");
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"WPCACHE1 not really").unwrap();
        let key = [7u8; KEY_LEN];
        let cache = IncrementalCache::in_dir(dir.path());
        assert!(cache.get(&key).is_none());
        assert!(!cache.insert(b"short", b"value".to_vec()), "only Cranelift's keys");
        assert!(cache.insert(&key, b"value".to_vec()));
        assert_eq!(cache.get(&key).as_deref(), Some(&b"value"[..]));
        cache.persist();
        let again = IncrementalCache::in_dir(dir.path());
        assert_eq!(again.get(&key).as_deref(), Some(&b"value"[..]));
        // Checksummed: one flipped byte and nothing is loaded.
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(FILE), bytes).unwrap();
        assert!(IncrementalCache::in_dir(dir.path()).get(&key).is_none());
    }
}
