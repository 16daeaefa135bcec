//! The command against hostile modules (issue 15's classes, end to end):
//! guest code at load that never returns, a module of 100,000 task
//! records, escape sequences in everything a guest writes, a module
//! cache others may write, and (issue 31) links planted at the output or
//! its journal, a journal others may write or that claims a 4 GiB record,
//! and a resume with other settings. Each ends within its bound with a
//! clear message and the right exit status.

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

// The output and its journal (issue 31): a task granted `--allow-write-dir`
// over the output's folder can put links there, and the journal is read
// back by `--resume`.

/// A file of input lines.
fn input_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lines.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// `wasmpool run` of `sqrt` over `input` into `output`, quietly, with
/// `extra` options: the WASI build of the demo module, so that grants
/// apply.
fn sqrt_into(input: &Path, output: &Path, extra: &[&str]) -> Output {
    wasmpool()
        .args(["run", guest_tasks::WASI_WASM_PATH, "sqrt", "-q", "-i"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Asserts that `out` could not run (status 2) and said all of `words`.
fn assert_refused(out: &Output, words: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    for word in words {
        assert!(stderr(out).contains(word), "{word:?} not in: {}", stderr(out));
    }
}

/// A journal entry: input index, record length, the record's CRC-32, and
/// the entry's own (as `cli/src/journal.rs` writes them).
#[cfg(unix)]
fn journal_entry(input: u64, len: u32, crc: u32) -> [u8; 20] {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&input.to_le_bytes());
    bytes[8..12].copy_from_slice(&len.to_le_bytes());
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let check = crc32fast::hash(&bytes[..16]);
    bytes[16..].copy_from_slice(&check.to_le_bytes());
    bytes
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_output_or_its_journal_is_refused_and_its_target_kept() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    let output = granted.join("results.jsonl");
    let journal = granted.join("results.jsonl.journal");
    // What a task allowed to write `granted` can leave there.
    symlink("../victim.txt", &output).unwrap();
    assert_refused(&sqrt_into(&input, &output, &[]), &["refusing the output", "is a symbolic link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "the link's target is untouched");
    std::fs::remove_file(&output).unwrap();
    symlink("../victim.txt", &journal).unwrap();
    assert_refused(&sqrt_into(&input, &output, &[]), &["refusing the journal", "is a symbolic link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");

    // On --resume: a link to a copy of the journal with a torn tail, which
    // a resume would cut, and then a link to a copy of the output.
    std::fs::remove_file(&journal).unwrap();
    let out = sqrt_into(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut copy = std::fs::read(&journal).unwrap();
    copy.extend([1, 2, 3]);
    std::fs::write(&victim, &copy).unwrap();
    std::fs::rename(&journal, dir.path().join("real.journal")).unwrap();
    symlink("../victim.txt", &journal).unwrap();
    assert_refused(&sqrt_into(&input, &output, &["--resume"]), &["refusing the journal", "is a symbolic link"]);
    assert_eq!(std::fs::read(&victim).unwrap(), copy, "the link's target is untouched");
    std::fs::remove_file(&journal).unwrap();
    std::fs::rename(dir.path().join("real.journal"), &journal).unwrap();
    let mut copy = std::fs::read(&output).unwrap();
    copy.extend(b"[0.1");
    std::fs::write(&victim, &copy).unwrap();
    std::fs::remove_file(&output).unwrap();
    symlink("../victim.txt", &output).unwrap();
    assert_refused(&sqrt_into(&input, &output, &["--resume"]), &["refusing the output", "is a symbolic link"]);
    assert_eq!(std::fs::read(&victim).unwrap(), copy);
}

#[cfg(unix)]
#[test]
fn a_hard_link_at_the_output_or_its_journal_is_refused_and_the_other_file_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let output = dir.path().join("results.jsonl");
    std::fs::hard_link(&victim, &output).unwrap();
    assert_refused(&sqrt_into(&input, &output, &[]), &["refusing the output", "has another name (a hard link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "not emptied");
    std::fs::remove_file(&output).unwrap();
    std::fs::hard_link(&victim, dir.path().join("results.jsonl.journal")).unwrap();
    assert_refused(&sqrt_into(&input, &output, &[]), &["refusing the journal", "has another name (a hard link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[cfg(unix)]
#[test]
fn a_journal_others_may_write_or_another_user_owns_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    let output = dir.path().join("results.jsonl");
    let journal = dir.path().join("results.jsonl.journal");
    let out = sqrt_into(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777, 0o600, "written private");
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_refused(
        &sqrt_into(&input, &output, &["--resume"]),
        &["refusing the journal", "other users may write to it (mode 666)"],
    );
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sqrt_into(&input, &output, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "once private again, it resumes: {}", stderr(&out));
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: a journal another user owns (making one needs root; CI runs as root)");
        return;
    }
    let path = std::ffi::CString::new(journal.clone().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0, "chown to nobody");
    assert_refused(
        &sqrt_into(&input, &output, &["--resume"]),
        &["refusing the journal", "belongs to user 65534, not to you (user 0)"],
    );
}

#[cfg(unix)]
#[test]
fn a_journal_entry_claiming_4_gib_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n16\n");
    let output = dir.path().join("results.jsonl");
    let journal = dir.path().join("results.jsonl.journal");
    let out = sqrt_into(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "2.0\n3.0\n4.0\n");
    // The last entry gone, as a kill leaves it; in its place one claiming
    // a record of 4 GiB - 1 bytes, behind an output made long enough to
    // hold it (sparse: 5 GiB of which nothing is on the disk). Before,
    // the resume allocated and read those 4 GiB.
    let entries = std::fs::OpenOptions::new().write(true).open(&journal).unwrap();
    entries.set_len(entries.metadata().unwrap().len() - 20).unwrap();
    drop(entries);
    std::fs::OpenOptions::new().write(true).open(&output).unwrap().set_len(5 << 30).unwrap();
    let mut entries = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    std::io::Write::write_all(&mut entries, &journal_entry(2, u32::MAX, 0)).unwrap();
    drop(entries);
    let journal_len = std::fs::metadata(&journal).unwrap().len();
    let start = Instant::now();
    let out = sqrt_into(&input, &output, &["--resume"]);
    assert_refused(
        &out,
        &["is damaged, or was tampered with: its entry 3 claims a record of 4294967295 bytes", "nothing was changed"],
    );
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    assert_eq!(std::fs::metadata(&output).unwrap().len(), 5 << 30, "the output is as it was");
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), journal_len, "and so is the journal");
}

#[test]
fn resume_refuses_another_policy_printed_output_grants_or_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    let output = dir.path().join("results.jsonl");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let elsewhere = elsewhere.to_str().unwrap();
    let base = ["--allow-env", "KEY=first secret", "--allow-wall-clock"];
    let out = sqrt_into(&input, &output, &base);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let resume = |options: &[&str]| -> Output {
        let mut all: Vec<&str> = options.to_vec();
        all.push("--resume");
        sqrt_into(&input, &output, &all)
    };
    let resume_adding = |extra: &[&str]| -> Output {
        let mut all: Vec<&str> = base.to_vec();
        all.extend_from_slice(extra);
        resume(&all)
    };
    assert_refused(&resume_adding(&["--on-error", "continue"]), &["another --on-error (stop)"]);
    assert_refused(&resume_adding(&["--printed", "records"]), &["another --printed (stderr)"]);
    for out in [
        resume(&["--allow-env", "KEY=second secret", "--allow-wall-clock"]),
        resume(&["--allow-env", "KEY=first secret"]),
        resume_adding(&["--allow-write-dir", elsewhere]),
        resume_adding(&["--allow-monotonic-clock"]),
    ] {
        assert_refused(&out, &["other grants (env KEY=sha256:"]);
        assert!(!stderr(&out).contains("secret"), "a value is never shown: {}", stderr(&out));
    }
    // Another input: one more line.
    std::fs::write(&input, "4\n9\n16\n").unwrap();
    assert_refused(&resume(&base), &["another input (4 bytes, SHA-256 "]);
    // Stdin cannot be checked at all.
    let out = wasmpool()
        .args(["run", guest_tasks::WASI_WASM_PATH, "sqrt", "-q", "-o"])
        .arg(&output)
        .args(base)
        .arg("--resume")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_refused(&out, &["cannot resume a run reading stdin", "-i FILE"]);
    // The same run resumes (and finds nothing left to do).
    std::fs::write(&input, "4\n9\n").unwrap();
    let out = resume(&base);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "2.0\n3.0\n");
}

#[test]
fn an_output_inside_a_folder_tasks_may_write_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    // An escape sequence in the folder's name is shown escaped.
    let shared = dir.path().join(if cfg!(unix) { "shared\u{1b}[2J" } else { "shared" });
    std::fs::create_dir(&shared).unwrap();
    let grant = format!("{}::/shared", shared.display());
    let out = sqrt_into(&input, &shared.join("results.jsonl"), &["--allow-write-dir", &grant]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_safe(&out.stderr);
    let warnings: Vec<String> = stderr(&out).lines().filter(|l| l.contains("warning")).map(str::to_owned).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("wasmpool: warning: the output "), "{}", warnings[0]);
    assert!(warnings[0].contains("which tasks may write (--allow-write-dir)"), "{}", warnings[0]);
    assert_eq!(std::fs::read_to_string(shared.join("results.jsonl")).unwrap(), "2.0\n3.0\n");
    // Beside the folder: nothing to say.
    let out = sqrt_into(&input, &dir.path().join("results.jsonl"), &["--allow-write-dir", &grant]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[cfg(target_os = "linux")]
#[test]
fn a_device_or_a_link_to_a_pipe_is_still_written_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), "4\n9\n");
    // `Output` reads stdout through a pipe: /dev/stdout is a link to it.
    let out = wasmpool()
        .args(["run", guest_tasks::WASM_PATH, "sqrt", "-q", "-o", "/dev/stdout", "-i"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2.0\n3.0\n");
    let out = sqrt_into(&input, Path::new("/dev/null"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!Path::new("/dev/null.journal").exists());
}
