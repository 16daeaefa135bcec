//! Finding the `wasmpool-worker` executable.
//!
//! The executable runs with the user's rights, so where it is looked for
//! is a trust boundary: a file found by searching (beside the running
//! program, in cargo's build folder, on `PATH`) is taken only if it and
//! its folder belong to the user or to the system (root) and nobody else
//! may write to them, and `PATH`'s relative entries (`.`, empty) are
//! skipped. A path the user names (`ProcessConfig::executable`,
//! `$WASMPOOL_WORKER`) is the user's choice and only has to exist.

use crate::trust::{Owners, trusted};
use std::path::{Path, PathBuf};

/// The environment variable that names the worker executable.
pub(crate) const WORKER_ENV: &str = "WASMPOOL_WORKER";

/// The executable's file name on this platform.
pub(crate) fn worker_file_name() -> String {
    format!("wasmpool-worker{}", std::env::consts::EXE_SUFFIX)
}

/// Why the search found no executable: every place looked, with why the
/// file there (if any) was not taken.
pub(crate) type NotFound = Vec<(PathBuf, Option<String>)>;

/// Finds the worker executable: the explicit path if given, else
/// `$WASMPOOL_WORKER`, else next to the running program, else (for a test
/// or an example cargo built, in `<profile>/deps` or `<profile>/examples`)
/// in cargo's profile folder, else in the absolute folders of `PATH`.
pub(crate) fn find_worker_executable(explicit: Option<&Path>) -> Result<PathBuf, NotFound> {
    if let Some(path) = explicit {
        return if path.is_file() { Ok(path.to_owned()) } else { Err(vec![(path.to_owned(), None)]) };
    }
    if let Some(path) = std::env::var_os(WORKER_ENV).map(PathBuf::from) {
        return if path.is_file() { Ok(path) } else { Err(vec![(path, None)]) };
    }
    let name = worker_file_name();
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(&name));
        if let Some(profile) = cargo_profile_of(dir) {
            candidates.push(profile.join(&name));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(on_path(&path, &name));
    }
    let mut searched = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        if !candidate.is_file() {
            searched.push((candidate, None));
            continue;
        }
        match trusted_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) => {
                tracing::warn!(path = %candidate.display(), "a worker executable was not taken: {why}");
                searched.push((candidate, Some(why)));
            }
        }
    }
    Err(searched)
}

/// `name` in each folder of `path` (a `PATH` value) that is absolute: a
/// relative one (`.`, or empty, which means `.`) names whatever folder
/// the program was started in.
fn on_path(path: &std::ffi::OsStr, name: &str) -> Vec<PathBuf> {
    std::env::split_paths(path).filter(|dir| dir.is_absolute()).map(|dir| dir.join(name)).collect()
}

/// The profile folder (`target/debug`) of a program cargo built as a test,
/// benchmark or example: its folder is `deps` or `examples` there, beside
/// cargo's `.cargo-lock`.
fn cargo_profile_of(dir: &Path) -> Option<&Path> {
    let inner = dir.file_name()?;
    let profile = dir.parent()?;
    (matches!(inner.to_str(), Some("deps" | "examples")) && profile.join(".cargo-lock").is_file()).then_some(profile)
}

/// Whether a found executable may be run: it (links followed) and its
/// folder belong to the user or to root, and nobody else may write to
/// them (Unix; elsewhere the folders a search looks in are the user's or
/// the system's).
fn trusted_executable(path: &Path) -> Result<(), String> {
    // What runs is what links lead to: the file and the folder it is in.
    let path = std::fs::canonicalize(path).map_err(|e| format!("cannot follow its path: {e}"))?;
    let folder = path.parent().unwrap_or(Path::new("/"));
    for (what, at) in [("file", path.as_path()), ("folder", folder)] {
        let metadata = std::fs::metadata(at).map_err(|e| format!("cannot look at the {what}: {e}"))?;
        trusted(&metadata, what, Owners::UserOrRoot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_path_must_exist() {
        let missing = Path::new("/no/such/wasmpool-worker");
        assert_eq!(find_worker_executable(Some(missing)), Err(vec![(missing.to_owned(), None)]));
        let me = std::env::current_exe().unwrap();
        assert_eq!(find_worker_executable(Some(&me)), Ok(me));
    }

    #[cfg(unix)]
    #[test]
    fn relative_folders_on_path_are_not_searched() {
        let found = on_path(std::ffi::OsStr::new("/usr/bin::.:bin:/opt/x"), "w");
        assert_eq!(found, [PathBuf::from("/usr/bin/w"), PathBuf::from("/opt/x/w")]);
    }

    #[test]
    fn only_cargos_own_folders_lead_to_the_profile_folder() {
        let target = tempfile::tempdir().unwrap();
        let profile = target.path().join("debug");
        for inner in ["deps", "examples", "other"] {
            std::fs::create_dir_all(profile.join(inner)).unwrap();
        }
        assert_eq!(cargo_profile_of(&profile.join("deps")), None, "no .cargo-lock: not cargo's");
        std::fs::write(profile.join(".cargo-lock"), "").unwrap();
        assert_eq!(cargo_profile_of(&profile.join("deps")), Some(profile.as_path()));
        assert_eq!(cargo_profile_of(&profile.join("examples")), Some(profile.as_path()));
        assert_eq!(cargo_profile_of(&profile.join("other")), None);
        // Not every parent: the program's own folder must be cargo's.
        assert_eq!(cargo_profile_of(&profile), None);
    }

    #[cfg(unix)]
    #[test]
    fn an_executable_others_may_write_or_in_such_a_folder_is_not_taken() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(worker_file_name());
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(trusted_executable(&exe), Ok(()));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(trusted_executable(&exe).unwrap_err().contains("other users may write to the file"));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A world-writable folder, such as /tmp: anyone could have put it there.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(trusted_executable(&exe).unwrap_err().contains("other users may write to the folder"));
        // A link from a trusted folder to a file in such a folder.
        let trusted = tempfile::tempdir().unwrap();
        let link = trusted.path().join(worker_file_name());
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        assert!(trusted_executable(&link).unwrap_err().contains("other users may write to the folder"));
        // Someone else's file, where the test can make one (as root).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: `geteuid` has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let name = std::ffi::CString::new(exe.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid C string; the file exists.
            assert_eq!(unsafe { libc::chown(name.as_ptr(), 65534, 65534) }, 0);
            assert!(trusted_executable(&exe).unwrap_err().contains("belongs to user 65534"));
        } else {
            eprintln!("SKIPPED (a file of another user): not running as root");
        }
    }
}
