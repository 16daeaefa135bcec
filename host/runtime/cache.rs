//! The cache of precompiled modules, and why it can be trusted.
//!
//! The host compiles a module once and stores wasmtime's serialized machine
//! code in a file named after the SHA-256 of the module's bytes and of the
//! engine's compatibility hash (wasmtime version and every setting that
//! affects code). Later pools load that file instead of compiling again.
//!
//! A precompiled artifact is native code: loading one that someone else
//! wrote would run their code in the host, outside every limit of the
//! sandbox. So the cache is a trust boundary (`docs/sandbox.md`), and:
//! - it lives only in the user's own cache folder (or one the program
//!   names): never in a shared temporary folder. Without a private folder
//!   the host compiles without a cache;
//! - the folder is created private to the user (0700 on Unix), and a folder
//!   that is not owned by the current user, or that others may write, is
//!   refused with a warning: the module is compiled without the cache;
//! - an entry is opened first and then checked through the open file (it
//!   must be a regular file owned by the current user that others may not
//!   write), and read from that same file, so it cannot be swapped between
//!   the check and the read; one that fails is never loaded;
//! - worker processes never read the cache: the host sends each one the
//!   compiled code it loaded or compiled itself (`transport/`).
//!
//! A cache file is `MAGIC`, then the SHA-256 of the payload, then the
//! payload; a truncated or corrupted file, or one wasmtime refuses (another
//! version or configuration), is rebuilt. Ownership and permission checks
//! are made on Unix; on Windows the default folder is under
//! `%LOCALAPPDATA%`, which only its user may write, and a folder given to
//! [`PoolBuilder::cache_dir`](crate::PoolBuilder::cache_dir) is trusted as
//! given.

use crate::trust::{Owners, trusted};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"WPCACHE1";

/// The default cache directory: `wasmpool` in the user's own cache folder
/// (`$XDG_CACHE_HOME`, `%LOCALAPPDATA%`, or `$HOME/.cache`), or none if no
/// such folder is known. Never the shared temporary folder.
pub(crate) fn default_dir() -> Option<PathBuf> {
    dir_from_env(|var| std::env::var_os(var))
}

/// [`default_dir`], reading the environment through `var`. Relative paths
/// are ignored, as the XDG specification asks.
fn dir_from_env(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|path| path.is_absolute());
    let base = absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("LOCALAPPDATA"))
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")));
    if base.is_none() {
        tracing::debug!(
            "no private cache folder is known (XDG_CACHE_HOME, LOCALAPPDATA, HOME): compiling without a cache"
        );
    }
    base.map(|base| base.join("wasmpool"))
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn key(engine: &Engine, wasm: &[u8], preparation: Option<&str>) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.write(&Sha256::digest(wasm));
    if let Some(name) = preparation {
        // Another entry than the bytes compiled as they are.
        hasher.write(b"prepared by ");
        hasher.write(name.as_bytes());
    }
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the cache holds: wasmtime's compiled core modules and components.
pub(crate) trait Artifact: Sized {
    /// Compiles `wasm`.
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self>;
    /// The compiled code, for the cache.
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// Loads compiled code.
    ///
    /// # Safety
    /// `bytes` must be what [`serialize`](Self::serialize) wrote, read from
    /// a place only this user can write (see the module's docs).
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
}

impl Artifact for Module {
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Module::new(engine, wasm)
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: as the caller promises.
        unsafe { Module::deserialize(engine, bytes) }
    }
}

impl Artifact for Component {
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
        Component::new(engine, wasm)
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: as the caller promises.
        unsafe { Component::deserialize(engine, bytes) }
    }
}

/// `wasm` compiled by `engine` (a module or a component): through the
/// cache in `dir` if there is one (see [`load_or_compile`]), else compiled
/// afresh.
pub(crate) fn compile<A: Artifact>(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> wasmtime::Result<A> {
    match dir {
        Some(dir) => load_or_compile(engine, wasm, None, dir, |wasm| A::compile(engine, wasm)),
        None => A::compile(engine, wasm),
    }
}

/// Why [`compile_prepared`] gave no compiled code.
#[derive(Debug)]
pub(crate) enum PreparedError {
    /// The preparation refused the bytes.
    Prepare(String),
    /// The prepared bytes did not compile.
    Compile(wasmtime::Error),
}

/// `wasm` rewritten by `prepare` (a deterministic rewrite, which
/// `preparation` names), then compiled by `engine`, through the cache in
/// `dir` if there is one: its entry is found by the bytes as given and
/// the preparation's name, so a hit costs neither the rewrite nor the
/// compile (for a 19 MB component, both take seconds).
pub(crate) fn compile_prepared<A: Artifact>(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
    preparation: &str,
    prepare: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<A, PreparedError> {
    let compile = |wasm: &[u8]| {
        let prepared = prepare(wasm).map_err(PreparedError::Prepare)?;
        A::compile(engine, &prepared).map_err(PreparedError::Compile)
    };
    match dir {
        Some(dir) => load_or_compile(engine, wasm, Some(preparation), dir, compile),
        None => compile(wasm),
    }
}

/// The module for `wasm`: loaded from the cache in `dir` if a trusted,
/// sound entry exists, otherwise compiled and stored there. A folder that
/// cannot be trusted or written is not an error, only a warning: the
/// module is compiled without it.
/// (`preparation` names what `compile` does to the bytes before compiling
/// them, if anything: see [`compile_prepared`].)
fn load_or_compile<A: Artifact, E>(
    engine: &Engine,
    wasm: &[u8],
    preparation: Option<&str>,
    dir: &Path,
    compile: impl FnOnce(&[u8]) -> Result<A, E>,
) -> Result<A, E> {
    if let Err(why) = private_dir(dir) {
        tracing::warn!(dir = %dir.display(), "not using the module cache: {why}; compiling without it");
        return compile(wasm);
    }
    let path = entry_path(engine, wasm, preparation, dir);
    if let Some(module) = load(engine, &path) {
        // Least recently used goes first: a hit counts as a use.
        let _ = File::options().append(true).open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok(module);
    }
    let module = compile(wasm)?;
    if let Err(e) = module.serialize().map_err(|e| e.to_string()).and_then(|payload| store(&path, &payload)) {
        tracing::warn!(dir = %dir.display(), "cannot write the module cache: {e}");
    }
    evict(dir, COMPILED_SUFFIX, limit(), &path);
    Ok(module)
}

/// The file name ending of compiled entries.
const COMPILED_SUFFIX: &str = ".cwasm";

/// How many bytes of compiled code the cache keeps by default: about 30
/// compiled Python components, thousands of Rust modules.
pub const DEFAULT_CACHE_LIMIT: u64 = 1 << 30;

/// The cache's size limit: `WASMPOOL_CACHE_LIMIT_MB` if set to a number
/// of MiB, else [`DEFAULT_CACHE_LIMIT`].
fn limit() -> u64 {
    std::env::var("WASMPOOL_CACHE_LIMIT_MB")
        .ok()
        .and_then(|mb| mb.trim().parse::<u64>().ok())
        .map_or(DEFAULT_CACHE_LIMIT, |mb| mb.saturating_mul(1 << 20))
}

/// Removes the least recently used entries of `dir` (regular files whose
/// names end in `suffix`; links and anything else are left alone) until
/// the rest total at most `limit` bytes; `keep`, just written, stays.
fn evict(dir: &Path, suffix: &str, limit: u64, keep: &Path) {
    let Ok(mut entries) = entries_in(dir, suffix) else { return };
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    entries.sort_by_key(|e| e.last_used);
    for entry in entries {
        if total <= limit {
            break;
        }
        if entry.path == keep {
            continue;
        }
        if std::fs::remove_file(&entry.path).is_ok() {
            tracing::debug!(path = %entry.path.display(), "removed from the module cache (least recently used)");
            total = total.saturating_sub(entry.size);
        }
    }
}

/// One file of the cache, as [`cache_entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When a pool last used it (its modification time).
    pub last_used: std::time::SystemTime,
    /// What it holds.
    pub kind: CacheEntryKind,
}

/// What a cache file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheEntryKind {
    /// A module or component compiled to machine code.
    Compiled,
    /// A Python module of tasks built into a component (by the Python
    /// package or `wasmpool build`), or the source of one packed from
    /// functions (`Pool([f, g])`, in `python/inline/`).
    PythonBuild,
    /// The functions of components compiled before, so that an edited one
    /// compiles only what changed (one file, bounded on its own).
    CompiledFunctions,
}

/// The regular files of `dir` whose names end in `suffix`.
fn entries_in(dir: &Path, suffix: &str) -> std::io::Result<Vec<CacheEntry>> {
    let kind = match suffix {
        COMPILED_SUFFIX => CacheEntryKind::Compiled,
        crate::runtime::incremental::FILE => CacheEntryKind::CompiledFunctions,
        _ => CacheEntryKind::PythonBuild,
    };
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        if !name.to_string_lossy().ends_with(suffix) {
            continue;
        }
        // Not followed: a link is nobody's entry.
        let Ok(metadata) = std::fs::symlink_metadata(item.path()) else { continue };
        if metadata.is_file() {
            let last_used = metadata.modified().unwrap_or(std::time::UNIX_EPOCH);
            entries.push(CacheEntry { path: item.path(), size: metadata.len(), last_used, kind });
        }
    }
    Ok(entries)
}

/// The cache folder pools use by default (`wasmpool` in the user's cache
/// folder), if one is known.
pub fn default_cache_dir() -> Option<PathBuf> {
    default_dir()
}

/// Every entry of the cache in `dir`: compiled code, and the Python builds
/// in its `python` folder; an empty list if there is no such folder.
pub fn cache_entries(dir: &Path) -> std::io::Result<Vec<CacheEntry>> {
    let missing_is_empty = |result: std::io::Result<Vec<CacheEntry>>| match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    };
    let mut entries = missing_is_empty(entries_in(dir, COMPILED_SUFFIX))?;
    entries.extend(missing_is_empty(entries_in(dir, crate::runtime::incremental::FILE))?);
    // The Python builds' folder, unless it is a link (to anywhere).
    let python = dir.join("python");
    if std::fs::symlink_metadata(&python).is_ok_and(|metadata| metadata.is_dir()) {
        entries.extend(missing_is_empty(entries_in(&python, ".wasm"))?);
        // The sources packed from functions (`Pool([f, g])`), likewise.
        let inline = python.join("inline");
        if std::fs::symlink_metadata(&inline).is_ok_and(|metadata| metadata.is_dir()) {
            entries.extend(missing_is_empty(entries_in(&inline, ".py"))?);
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.last_used));
    Ok(entries)
}

/// Removes every entry of the cache in `dir` ([`cache_entries`]): how
/// many files and bytes went. Anything else in the folder stays.
pub fn clear_cache(dir: &Path) -> std::io::Result<(usize, u64)> {
    let mut removed = (0, 0);
    for entry in cache_entries(dir)? {
        match std::fs::remove_file(&entry.path) {
            Ok(()) => {
                removed.0 += 1;
                removed.1 += entry.size;
            }
            // Removed meanwhile (another pool's eviction): gone all the same.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// The entry for `wasm` compiled by `engine`, in `dir`.
fn entry_path(engine: &Engine, wasm: &[u8], preparation: Option<&str>, dir: &Path) -> PathBuf {
    dir.join(format!("{}{COMPILED_SUFFIX}", key(engine, wasm, preparation)))
}

/// Creates `dir` private to the user if it is missing, and checks that it
/// is a folder only the user can write.
pub(crate) fn private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let metadata = std::fs::metadata(dir).map_err(|e| format!("cannot look at it: {e}"))?;
    if !metadata.is_dir() {
        return Err("it is not a folder".into());
    }
    trusted(&metadata, "folder", Owners::User)
}

/// Loads a cache entry if it is trusted, intact and wasmtime accepts it;
/// removes it if it is corrupt or stale (an untrusted one is left for the
/// store that follows to replace).
fn load<A: Artifact>(engine: &Engine, path: &Path) -> Option<A> {
    let bytes = read_trusted(path, u64::MAX)?;
    match verify(&bytes) {
        Ok(payload) => {
            // SAFETY: the payload is what `Module::serialize` wrote in a
            // folder and file only this user can write (checked above), its
            // checksum matches, and wasmtime checks version and settings.
            match unsafe { A::deserialize(engine, payload) } {
                Ok(module) => return Some(module),
                Err(e) => tracing::info!(path = %path.display(), "stale module cache entry, rebuilding: {e}"),
            }
        }
        Err(why) => tracing::warn!(path = %path.display(), "corrupt module cache entry, rebuilding: {why}"),
    }
    let _ = std::fs::remove_file(path);
    None
}

/// The bytes of the cache file at `path`, if it is trusted (a regular file
/// of the user's that others may not write, checked through the open file:
/// what is read is what was checked) and holds at most `max` bytes.
pub(super) fn read_trusted(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    let checked = file.metadata().map_err(|e| e.to_string()).and_then(|metadata| {
        if !metadata.is_file() {
            Err("not a regular file".to_owned())
        } else if metadata.len() > max {
            Err(format!("larger than {max} bytes"))
        } else {
            trusted(&metadata, "entry", Owners::User)
        }
    });
    if let Err(why) = checked {
        tracing::warn!(path = %path.display(), "not loading a cache file: {why}");
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The payload of a cache file, if the file is intact.
pub(super) fn verify(bytes: &[u8]) -> Result<&[u8], String> {
    let header = MAGIC.len() + 32;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a wasmpool cache file".into());
    }
    let payload = &bytes[header..];
    if Sha256::digest(payload).as_slice() != &bytes[MAGIC.len()..header] {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

/// Writes an entry atomically (a private temporary file, then rename).
pub(super) fn store(path: &Path, payload: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or("the cache path has no folder")?;
    let checksum: [u8; 32] = Sha256::digest(payload).into();
    // `tempfile` creates the file readable and writable by its user only.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    tmp.write_all(MAGIC)
        .and_then(|()| tmp.write_all(&checksum))
        .and_then(|()| tmp.write_all(payload))
        .map_err(|e| e.to_string())?;
    tmp.persist(path).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    fn only_entry(dir: &Path) -> PathBuf {
        let entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn a_second_load_comes_from_the_cache_and_corruption_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let wasm = wat::parse_str(WAT).unwrap();
        assert!(compile::<Module>(&engine, &wasm, Some(dir.path())).is_ok());
        let entry = only_entry(dir.path());
        assert!(load::<Module>(&engine, &entry).is_some(), "an intact entry loads");

        // Flip one byte of the payload: detected, removed, rebuilt.
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        assert!(verify(&bytes).unwrap_err().contains("checksum"));
        assert!(load::<Module>(&engine, &entry).is_none());
        assert!(!entry.exists(), "a corrupt entry is removed");
        assert!(compile::<Module>(&engine, &wasm, Some(dir.path())).is_ok());
        assert!(load::<Module>(&engine, &only_entry(dir.path())).is_some(), "and written again");
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        assert!(verify(b"WPCACHE1").is_err());
        assert!(verify(b"\0asm\x01\0\0\0 and more bytes than a header has").is_err());
    }

    #[test]
    fn keys_depend_on_module_and_engine_settings() {
        let wasm = wat::parse_str(WAT).unwrap();
        let other = wat::parse_str(r#"(module (func (export "g")))"#).unwrap();
        let engine = Engine::default();
        let mut config = wasmtime::Config::new();
        config.cranelift_nan_canonicalization(true);
        let canonical = Engine::new(&config).unwrap();
        assert_ne!(key(&engine, &wasm, None), key(&engine, &other, None));
        assert_ne!(key(&engine, &wasm, None), key(&canonical, &wasm, None));
        assert_eq!(key(&engine, &wasm, None), key(&Engine::default(), &wasm, None));
        // Prepared bytes are other entries, one per preparation.
        assert_ne!(key(&engine, &wasm, None), key(&engine, &wasm, Some("nans")));
        assert_ne!(key(&engine, &wasm, Some("nans")), key(&engine, &wasm, Some("other")));
    }

    #[test]
    fn a_prepared_entry_skips_the_preparation_when_found() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let wasm = wat::parse_str(WAT).unwrap();
        let runs = std::cell::Cell::new(0);
        let prepare = |bytes: &[u8]| {
            runs.set(runs.get() + 1);
            Ok(bytes.to_vec())
        };
        for _ in 0..2 {
            compile_prepared::<Module>(&engine, &wasm, Some(dir.path()), "copy", prepare).unwrap();
        }
        assert_eq!(runs.get(), 1, "the second build found the entry");
        let refused = compile_prepared::<Module>(&engine, &wasm, Some(dir.path()), "refuse", |_| Err("no".into()));
        assert!(matches!(refused, Err(PreparedError::Prepare(why)) if why == "no"));
    }

    #[test]
    fn the_default_folder_is_the_users_own_or_none() {
        let env = |vars: Vec<(&'static str, &'static str)>| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| std::ffi::OsString::from(v))
        };
        let home = if cfg!(windows) { r"C:\Users\me" } else { "/home/me" };
        let expected = Path::new(home).join(".cache").join("wasmpool");
        assert_eq!(dir_from_env(env(vec![])), None, "no known folder: no cache, and no temporary folder");
        assert_eq!(dir_from_env(env(vec![("HOME", home)])), Some(expected.clone()));
        let relative = env(vec![("XDG_CACHE_HOME", "relative/cache"), ("HOME", home)]);
        assert_eq!(dir_from_env(relative), Some(expected), "a relative XDG_CACHE_HOME is ignored");
        assert_eq!(dir_from_env(env(vec![("HOME", "relative")])), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_folder_is_created_private_and_an_open_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a/b/wasmpool");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = private_dir(&dir).unwrap_err();
        assert!(why.contains("other users may write"), "{why}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(private_dir(&dir).is_err(), "a folder its group may write is refused too");
    }

    #[test]
    fn the_least_recently_used_entries_go_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        for (name, age) in [("a.cwasm", 3), ("b.cwasm", 1), ("c.cwasm", 2), ("new.cwasm", 0)] {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 1000]).unwrap();
            File::options().append(true).open(&path).unwrap().set_modified(now - day * age).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), vec![0u8; 5000]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("notes.txt"), dir.path().join("link.cwasm")).unwrap();
        // 4,000 bytes of entries, 2,500 allowed: the two oldest go.
        evict(dir.path(), COMPILED_SUFFIX, 2500, &dir.path().join("new.cwasm"));
        let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        let mut expected = vec!["b.cwasm", "new.cwasm", "notes.txt"];
        if cfg!(unix) {
            expected.insert(1, "link.cwasm");
        }
        assert_eq!(left, expected);
        // The one just written stays even alone past the limit.
        evict(dir.path(), COMPILED_SUFFIX, 10, &dir.path().join("new.cwasm"));
        assert!(dir.path().join("new.cwasm").exists() && !dir.path().join("b.cwasm").exists());
    }

    #[test]
    fn a_cache_is_listed_and_cleared_with_its_python_builds() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cache_entries(&dir.path().join("missing")).unwrap(), []);
        let engine = Engine::default();
        let _: Module = compile(&engine, &wat::parse_str(WAT).unwrap(), Some(dir.path())).unwrap();
        std::fs::create_dir(dir.path().join("python")).unwrap();
        std::fs::write(dir.path().join("python").join("tasks-0123.wasm"), b"\0asm").unwrap();
        let entries = cache_entries(dir.path()).unwrap();
        let kinds: Vec<_> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.len(), 2);
        assert!(kinds.contains(&CacheEntryKind::Compiled) && kinds.contains(&CacheEntryKind::PythonBuild));
        let (files, bytes) = clear_cache(dir.path()).unwrap();
        assert_eq!((files, bytes), (2, entries.iter().map(|e| e.size).sum()));
        assert_eq!(cache_entries(dir.path()).unwrap(), []);
    }
}
