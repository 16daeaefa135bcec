//! The cache of precompiled modules.
//!
//! The host compiles a module once and stores wasmtime's serialized machine
//! code in a file named after the SHA-256 of the module's bytes and of the
//! engine's compatibility hash (wasmtime version and every setting that
//! affects code). Worker processes, and later pools, load that file instead
//! of compiling again, so every worker runs the same machine code.
//!
//! A cache file is `MAGIC`, then the SHA-256 of the payload, then the
//! payload. It is checked before it is used: a truncated or corrupted file,
//! or one wasmtime refuses (another version or configuration), is rebuilt.
//! The cache directory should be writable by its user only: wasmtime trusts
//! the machine code it loads.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"WPCACHE1";

/// A precompiled module on disk.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub path: PathBuf,
    pub checksum: [u8; 32],
}

/// The default cache directory: the user's cache folder, else the temp dir.
pub(crate) fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("wasmpool")
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

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.write(&Sha256::digest(wasm));
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The module for `wasm`: loaded from the cache if a sound entry exists,
/// otherwise compiled and stored. Failing to write the cache is not an error
/// for thread pools (`None` artifact), only a warning.
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: &Path,
) -> (wasmtime::Result<Module>, Option<Artifact>) {
    let path = entry_path(engine, wasm, dir);
    if let Some((module, checksum)) = load(engine, &path) {
        return (Ok(module), Some(Artifact { path, checksum }));
    }
    let module = match Module::new(engine, wasm) {
        Ok(module) => module,
        Err(e) => return (Err(e), None),
    };
    let artifact = match store_module(engine, &module, wasm, dir) {
        Ok(artifact) => Some(artifact),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot write the module cache: {e}");
            None
        }
    };
    (Ok(module), artifact)
}

/// The entry for `wasm` compiled by `engine`, in `dir`.
fn entry_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    dir.join(format!("{}.cwasm", key(engine, wasm)))
}

/// Stores `module` (compiled from `wasm` by `engine`) as an entry in `dir`.
pub(crate) fn store_module(engine: &Engine, module: &Module, wasm: &[u8], dir: &Path) -> Result<Artifact, String> {
    let path = entry_path(engine, wasm, dir);
    let payload = module.serialize().map_err(|e| e.to_string())?;
    let checksum = store(&path, &payload)?;
    Ok(Artifact { path, checksum })
}

/// Loads a cache entry if it is intact and wasmtime accepts it; removes it
/// if it is not.
fn load(engine: &Engine, path: &Path) -> Option<(Module, [u8; 32])> {
    let bytes = std::fs::read(path).ok()?;
    match verify(&bytes) {
        Ok((payload, checksum)) => {
            // SAFETY: the payload is what `Module::serialize` wrote (its
            // checksum matches) and wasmtime checks version and settings.
            match unsafe { Module::deserialize(engine, payload) } {
                Ok(module) => return Some((module, checksum)),
                Err(e) => tracing::info!(path = %path.display(), "stale module cache entry, rebuilding: {e}"),
            }
        }
        Err(why) => tracing::warn!(path = %path.display(), "corrupt module cache entry, rebuilding: {why}"),
    }
    let _ = std::fs::remove_file(path);
    None
}

/// The payload of a cache file and its checksum, if the file is intact.
pub(crate) fn verify(bytes: &[u8]) -> Result<(&[u8], [u8; 32]), String> {
    let header = MAGIC.len() + 32;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a wasmpool cache file".into());
    }
    let mut checksum = [0u8; 32];
    checksum.copy_from_slice(&bytes[MAGIC.len()..header]);
    let payload = &bytes[header..];
    if Sha256::digest(payload).as_slice() != checksum {
        return Err("checksum mismatch".into());
    }
    Ok((payload, checksum))
}

/// Reads an artifact and deserializes it, checking it is the one expected.
pub(crate) fn load_artifact(engine: &Engine, path: &Path, expected: &[u8; 32]) -> Result<Module, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (payload, checksum) = verify(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if &checksum != expected {
        return Err(format!("{} changed since the host wrote it", path.display()));
    }
    // SAFETY: as in `load`: an intact file written by `Module::serialize`.
    unsafe { Module::deserialize(engine, payload) }.map_err(|e| format!("{e:#}"))
}

/// Writes an entry atomically (temporary file, then rename).
fn store(path: &Path, payload: &[u8]) -> Result<[u8; 32], String> {
    let dir = path.parent().ok_or("the cache path has no folder")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let checksum: [u8; 32] = Sha256::digest(payload).into();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    tmp.write_all(MAGIC)
        .and_then(|()| tmp.write_all(&checksum))
        .and_then(|()| tmp.write_all(payload))
        .map_err(|e| e.to_string())?;
    tmp.persist(path).map_err(|e| e.to_string())?;
    Ok(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    #[test]
    fn a_second_load_comes_from_the_cache_and_corruption_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let wasm = wat::parse_str(WAT).unwrap();
        let (module, artifact) = load_or_compile(&engine, &wasm, dir.path());
        assert!(module.is_ok());
        let artifact = artifact.unwrap();
        assert!(load(&engine, &artifact.path).is_some(), "an intact entry loads");
        assert!(load_artifact(&engine, &artifact.path, &artifact.checksum).is_ok());

        // Flip one byte of the payload: detected, removed, rebuilt.
        let mut bytes = std::fs::read(&artifact.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&artifact.path, &bytes).unwrap();
        assert!(load_artifact(&engine, &artifact.path, &artifact.checksum).unwrap_err().contains("checksum"));
        assert!(load(&engine, &artifact.path).is_none());
        assert!(!artifact.path.exists(), "a corrupt entry is removed");
        let (again, rebuilt) = load_or_compile(&engine, &wasm, dir.path());
        assert!(again.is_ok());
        assert_eq!(rebuilt.unwrap().checksum, artifact.checksum);
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
        assert_ne!(key(&engine, &wasm), key(&engine, &other));
        assert_ne!(key(&engine, &wasm), key(&canonical, &wasm));
        assert_eq!(key(&engine, &wasm), key(&Engine::default(), &wasm));
    }
}
