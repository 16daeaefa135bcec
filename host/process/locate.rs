//! Finding the `wasmpool-worker` executable.

use std::path::{Path, PathBuf};

/// The environment variable that names the worker executable.
pub(crate) const WORKER_ENV: &str = "WASMPOOL_WORKER";

/// The executable's file name on this platform.
pub(crate) fn worker_file_name() -> String {
    format!("wasmpool-worker{}", std::env::consts::EXE_SUFFIX)
}

/// Finds the worker executable: the explicit path if given, else
/// `$WASMPOOL_WORKER`, else next to the running program, else in its parent
/// folder (cargo puts tests in `target/<profile>/deps` and examples in
/// `target/<profile>/examples`, binaries in `target/<profile>`), else on
/// `PATH`. On failure, returns every place it looked.
pub(crate) fn find_worker_executable(explicit: Option<&Path>) -> Result<PathBuf, Vec<PathBuf>> {
    if let Some(path) = explicit {
        return if path.is_file() { Ok(path.to_owned()) } else { Err(vec![path.to_owned()]) };
    }
    if let Some(path) = std::env::var_os(WORKER_ENV).map(PathBuf::from) {
        return if path.is_file() { Ok(path) } else { Err(vec![path]) };
    }
    let name = worker_file_name();
    let mut searched = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        searched.push(dir.join(&name));
        if let Some(parent) = dir.parent() {
            searched.push(parent.join(&name));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        searched.extend(std::env::split_paths(&path).map(|dir| dir.join(&name)));
    }
    match searched.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(searched),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_path_must_exist() {
        let missing = Path::new("/no/such/wasmpool-worker");
        assert_eq!(find_worker_executable(Some(missing)), Err(vec![missing.to_owned()]));
        let me = std::env::current_exe().unwrap();
        assert_eq!(find_worker_executable(Some(&me)), Ok(me));
    }
}
