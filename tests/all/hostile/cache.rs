//! Class 4: the module cache is a trust boundary. A precompiled module is
//! native code the host runs outside the sandbox, so an entry that someone
//! else could have written is never loaded. Each test plants an entry
//! compiled from another module (whose `ok` answers 7, not 42) under the
//! name of the real module's entry: a pool that loaded it would answer 7.

use super::{assemble, harmless};
use std::path::{Path, PathBuf};
#[cfg(unix)]
use wasmpool::ProcessConfig;
use wasmpool::{Pool, PoolBuilder, WorkerKind};

/// The same prelude as the harmless module, but `ok` answers 7.
fn impostor() -> Vec<u8> {
    assemble(
        r#";; prelude: memory abi alloc
        (data (i32.const 0) "\00\00\00\00\10\00\00\00\01\00\00\00")
        (data (i32.const 16) "\07")
        (func (export "wasmpool_task_ok") (param i32 i32) (result i32) i32.const 0)
        (@custom "wasmpool.tasks" "\01\02ok\00\03u32\00")"#,
    )
}

fn cached(kind: WorkerKind, bytes: Vec<u8>, dir: &Path) -> PoolBuilder {
    Pool::builder().module_bytes(bytes).workers(1).worker_kind(kind).cache_dir(dir)
}

fn answer(kind: WorkerKind, dir: &Path) -> u32 {
    let pool = cached(kind, harmless(), dir).build().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    pool.call("ok", ()).unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

fn only_entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "one entry in {}: {entries:?}", dir.display());
    entries[0].clone()
}

/// A cache folder holding the harmless module's entry, replaced by the
/// impostor's compiled code; and the entry's path.
fn planted(kind: WorkerKind) -> (tempfile::TempDir, PathBuf) {
    let real = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    assert_eq!(answer(kind, real.path()), 42);
    let entry = only_entry(real.path());
    let pool = cached(kind, impostor(), other.path()).build().unwrap();
    assert_eq!(pool.call::<_, u32>("ok", ()).unwrap(), 7);
    std::fs::copy(only_entry(other.path()), &entry).unwrap();
    (real, entry)
}

each_kind! {
    fn a_planted_entry_in_the_users_own_folder_is_what_the_cache_trusts(kind) {
        // The control for the tests below: the plant works, so their 42s mean
        // the planted code was refused, not that it failed to load.
        let (dir, _) = planted(kind);
        assert_eq!(answer(kind, dir.path()), 7, "{kind:?}: the user's own cache is trusted");
    }
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, chown};

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Whether files can be given to another user here (root only).
    fn can_chown() -> bool {
        // SAFETY: `geteuid` has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            eprintln!("skipped: giving a file to another user needs root");
        }
        root
    }

    /// Someone else: `nobody` on most systems.
    const OTHER_USER: u32 = 65534;

    each_kind! {
        fn a_planted_entry_in_a_folder_others_may_write_is_never_loaded(kind) {
            let (dir, entry) = planted(kind);
            set_mode(dir.path(), 0o777);
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}");
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}: nor written there");
            set_mode(dir.path(), 0o700);
            std::fs::remove_file(entry).unwrap();
        }
    }

    each_kind! {
        fn a_planted_entry_others_may_write_is_never_loaded(kind) {
            let (dir, entry) = planted(kind);
            set_mode(&entry, 0o666);
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}");
            // The refused entry is replaced by the host's own.
            assert_eq!(std::fs::metadata(&entry).unwrap().permissions().mode() & 0o077, 0, "{kind:?}");
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}");
        }
    }

    each_kind! {
        fn a_planted_entry_owned_by_another_user_is_never_loaded(kind) {
            if !can_chown() {
                return;
            }
            let (dir, entry) = planted(kind);
            chown(&entry, Some(OTHER_USER), Some(OTHER_USER)).unwrap();
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}");
        }
    }

    each_kind! {
        fn a_cache_folder_owned_by_another_user_is_never_used(kind) {
            if !can_chown() {
                return;
            }
            let (dir, _) = planted(kind);
            chown(dir.path(), Some(OTHER_USER), Some(OTHER_USER)).unwrap();
            assert_eq!(answer(kind, dir.path()), 42, "{kind:?}");
        }
    }

    #[test]
    fn a_missing_cache_folder_is_created_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache").join("wasmpool");
        assert_eq!(answer(WorkerKind::Threads, &dir), 42);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(only_entry(&dir)).unwrap().permissions().mode() & 0o077, 0);
    }

    #[test]
    fn worker_processes_run_the_code_the_host_loaded_not_what_the_cache_holds_later() {
        // The host loads the harmless module's entry; then the entry is
        // replaced and the worker process killed. Its replacement runs the
        // code the host sent it, not the file.
        let dir = tempfile::tempdir().unwrap();
        let pool = cached(WorkerKind::Processes, harmless(), dir.path())
            .processes(ProcessConfig::new().max_retries(2))
            .build()
            .unwrap();
        assert_eq!(pool.call::<_, u32>("ok", ()).unwrap(), 42);
        let entry = only_entry(dir.path());
        let other = tempfile::tempdir().unwrap();
        drop(cached(WorkerKind::Processes, impostor(), other.path()).build().unwrap());
        std::fs::copy(only_entry(other.path()), &entry).unwrap();
        let pid = pool.worker_pids()[0].expect("a live worker");
        let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        for _ in 0..3 {
            assert_eq!(pool.call::<_, u32>("ok", ()).unwrap(), 42);
        }
        assert_ne!(pool.worker_pids()[0], Some(pid), "the worker was replaced");
    }
}
