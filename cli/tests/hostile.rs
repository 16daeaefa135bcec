//! The command against hostile modules (issue 15's classes, end to end):
//! guest code at load that never returns, a module of 100,000 task
//! records, escape sequences in everything a guest writes, and a module
//! cache others may write. Each ends within its bound with a clear message
//! and the right exit status.

#[path = "../../tests/all/common/records.rs"]
mod records;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn wasmpool() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmpool"));
    command.env_remove("RUST_LOG");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Nothing a terminal would act on (an escape, a NUL, a bell, a carriage
/// return, a bidi override) in what the command printed.
fn assert_safe(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.chars().any(|c| wasmpool::text::is_unsafe(c) && c != '\n'), "raw control characters in {text:?}");
}

/// The ABI's fixed exports and a task `ok` answering 42, around `body`.
fn module(dir: &Path, name: &str, body: &str) -> PathBuf {
    let wat = format!(
        r#"(module
            {body}
            (memory (export "memory") 1)
            (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 1024)
            (data (i32.const 0) "\00\00\00\00\10\00\00\00\02\00\00\00")
            (data (i32.const 16) "42")
            (func (export "wasmpool_task_ok") (param i32 i32) (result i32) i32.const 0)
            (func (export "wasmpool_json_ok") (param i32 i32) (result i32) i32.const 0)
            (@custom "wasmpool.tasks" "\01\02ok\00\03u32\00"))"#
    );
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).expect("the module assembles")).unwrap();
    path
}

const ABI_VERSION: &str = r#"(func (export "wasmpool_abi_version") (result i32) i32.const 1)"#;

/// A module whose start function never returns.
fn hanging(dir: &Path) -> PathBuf {
    module(dir, "hang", &format!("{ABI_VERSION} (func $hang (loop $l (br $l))) (start $hang)"))
}

#[test]
fn a_start_function_that_never_returns_stops_the_run_at_the_load_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let hang = hanging(dir.path());
    for extra in [&[][..], &["--processes"][..]] {
        let start = Instant::now();
        let out = wasmpool()
            .args(["run"])
            .arg(&hang)
            .args(["ok", "--load-deadline", "300ms"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(start.elapsed() < Duration::from_secs(20), "{extra:?}: took {:?}", start.elapsed());
        let message = stderr(&out);
        assert!(message.contains("its start function did not return within 300ms"), "{extra:?}: {message}");
    }
}

#[test]
fn list_runs_none_of_the_modules_code() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = wasmpool().arg("list").arg(hanging(dir.path())).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok() -> u32"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn a_module_of_100000_tasks_is_listed_and_one_repeating_a_name_refused() {
    use records::{Records, module_with_records};
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.wasm");
    std::fs::write(&valid, module_with_records(100_000, Records::Valid)).unwrap();
    let start = Instant::now();
    let out = wasmpool().arg("list").arg(&valid).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 100_000);
    let out = wasmpool().args(["run"]).arg(&valid).arg("t99999").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no JSON entry points: {}", stderr(&out));
    assert!(stderr(&out).contains("no JSON entry point"), "{}", stderr(&out));

    let repeated = dir.path().join("repeated.wasm");
    std::fs::write(&repeated, module_with_records(100_000, Records::Duplicated)).unwrap();
    let out = wasmpool().arg("list").arg(&repeated).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("task `t0` is described twice"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
}

#[test]
fn list_escapes_what_the_task_list_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = module(
        dir.path(),
        "list",
        &format!(
            r#"{ABI_VERSION}
            (func (export "wasmpool_task_evil") (param i32 i32) (result i32) i32.const 0)
            (@custom "wasmpool.tasks" "\01\04evil\01\05\1b[2Jx\09u32\1b]0;t\07\02()\14Looks\1b[8m hidden\e2\80\ae.")"#
        ),
    );
    let out = wasmpool().arg("list").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_safe(&out.stdout);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("evil(\\u{1b}[2Jx: u32\\u{1b}]0;t\\u{7}) -> ()"), "{text}");
    assert!(text.contains("    Looks\\u{1b}[8m hidden\\u{202e}."), "{text}");
    // JSON escapes them its own way, and the doc keeps its value.
    let out = wasmpool().args(["list", "--json"]).arg(&path).output().unwrap();
    assert_safe(&out.stdout);
    let records: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records[0]["doc"], "Looks\u{1b}[8m hidden\u{202e}.");
}

/// A module whose task `attack` panics with escape sequences in its
/// message, and whose JSON entry point does the same.
fn panicking(dir: &Path) -> PathBuf {
    module(
        dir,
        "panic",
        &format!(
            r#"(import "wasmpool" "panic" (func $panic (param i32 i32 i32 i32 i32 i32)))
            {ABI_VERSION}
            (data (i32.const 2048) "\1b[2J\1b]0;pwned\07\00\00line two\0a\1b[31mred\e2\80\ae")
            (func $attack (param i32 i32) (result i32)
              (call $panic (i32.const 2048) (i32.const 36) (i32.const 2048) (i32.const 4) (i32.const 1) (i32.const 2))
              unreachable)
            (export "wasmpool_task_attack" (func $attack))
            (export "wasmpool_json_attack" (func $attack))
            (@custom "wasmpool.tasks" "\01\06attack\01\01x\03u32\02()\00")"#
        ),
    )
}

#[test]
fn a_panic_full_of_escape_sequences_is_reported_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = panicking(dir.path());
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "1\n2\n").unwrap();
    // Stopping at it: the report on stderr.
    let out = wasmpool().arg("run").arg(&path).arg("attack").arg("-i").arg(&input).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_safe(&out.stderr);
    assert!(stderr(&out).contains("\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\0\\0line two\n\\u{1b}[31mred"), "{}", stderr(&out));
    // Going on: one JSON error object per line, escaped as JSON.
    let out =
        wasmpool().arg("run").arg(&path).args(["attack", "--on-error", "continue", "-i"]).arg(&input).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_safe(&out.stdout);
    assert_safe(&out.stderr);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["error"]["kind"], "panic", "{line}");
    }
}

#[cfg(unix)]
#[test]
fn a_cache_folder_others_may_write_is_not_used_and_the_run_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("wasmpool");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = wasmpool()
        .args(["run", guest_tasks::WASM_PATH, "sqrt", "-q"])
        .env("XDG_CACHE_HOME", home.path())
        .stdin(std::fs::File::open(write_lines(home.path())).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2.0\n3.0\n");
    assert!(stderr(&out).contains("not using the module cache"), "{}", stderr(&out));
    assert!(stderr(&out).contains("other users may write to the folder"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "nothing was written there");
}

#[cfg(unix)]
fn write_lines(dir: &Path) -> PathBuf {
    let path = dir.join("in.jsonl");
    std::fs::write(&path, "4\n9\n").unwrap();
    path
}
