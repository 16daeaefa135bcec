//! A task module written in C against docs/abi.md, without the Rust SDK,
//! runs on the pool: the ABI document is precise enough to implement.
//!
//! Needs clang and wasm-ld (Debian: `apt-get install clang lld`). Without
//! them the test says so and passes, except in CI (`CI=true`), where
//! `.ci/run` installs them and their absence is a failure.

use std::path::Path;
use std::process::Command;
use wasmpool::{Pool, TaskFailure};

#[test]
#[cfg_attr(
    windows,
    ignore = "builds its guest with clang at run time, and the Windows CI (Linux's clang, under Wine) has no Windows clang"
)]
fn a_c_task_module_runs_on_the_pool() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/c-guest/add.c");
    let out_dir = tempfile::tempdir().unwrap();
    let module = out_dir.path().join("add.wasm");
    let built = Command::new("clang")
        .args(["--target=wasm32", "-nostdlib", "-O2", "-Wl,--no-entry", "-Wl,--export-dynamic", "-o"])
        .arg(&module)
        .arg(&source)
        .output();
    match built {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            panic!("clang failed to build {}:\n{}", source.display(), String::from_utf8_lossy(&output.stderr))
        }
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: clang is not available ({e}); install clang and lld to run this test");
            return;
        }
        Err(e) => panic!("clang is required in CI: {e}"),
    }

    let pool = Pool::builder().module_file(&module).workers(2).build().unwrap();
    let task = &pool.tasks()[0];
    assert_eq!(task.to_string(), "add(a: i64, b: i64) -> i64");
    let sums: Vec<i64> = pool.map("add", (-50i64..50).map(|i| (i, i * 1000))).unwrap();
    assert_eq!(sums, (-50i64..50).map(|i| i + i * 1000).collect::<Vec<_>>());
    assert_eq!(pool.call::<_, i64>("add", (i64::MIN + 1, -1i64)).unwrap(), i64::MIN);

    // Its own argument check reports through status 2.
    #[derive(serde::Serialize)]
    struct OneArgument(i64);
    let err = pool.call::<_, i64>("add", OneArgument(1)).unwrap_err();
    let failure = err.as_task_error().unwrap().failure.clone();
    assert_eq!(failure, TaskFailure::BadArguments("expected two i64 arguments".into()));
}
