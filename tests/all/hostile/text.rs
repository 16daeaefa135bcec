//! Class 3: text the guest writes (panic and `Err` messages, trap frame
//! names, task names, types and docs, printed output) never reaches a
//! terminal raw: every error's `Display` escapes it. The data itself is
//! kept as the guest wrote it, for programs that want it.

use super::{KINDS, hostile_pool, module, module_error};
use wasmpool::text::is_unsafe;
use wasmpool::{Error, ModuleError, Pool, TaskFailure, WasiConfig};

/// The failure of task `attack` of module `name`, in each kind of pool,
/// with the pool still serving after it.
fn failures(name: &str) -> Vec<TaskFailure> {
    KINDS
        .iter()
        .map(|&kind| {
            let pool = hostile_pool(kind, module(name)).build().unwrap_or_else(|e| panic!("{name} ({kind:?}): {e}"));
            let error = pool.call::<_, ()>("attack", ()).expect_err("the attack fails");
            assert_eq!(pool.call::<_, u32>("ok", ()).expect("the pool serves on"), 42, "{name} ({kind:?})");
            error.as_task_error().unwrap_or_else(|| panic!("{name}: {error}")).failure.clone()
        })
        .collect()
}

/// Nothing a terminal would act on is left in `text` (newlines aside).
fn assert_safe(text: &str) {
    assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "raw control characters in {text:?}");
}

#[test]
fn a_panic_message_and_file_full_of_escape_sequences_are_shown_escaped() {
    for failure in failures("escapes_in_panic") {
        let TaskFailure::Panic { message, location } = &failure else { panic!("not a panic: {failure:?}") };
        assert_eq!(message, "\u{1b}[2J\u{1b}]0;pwned\u{7}\0\0line two\n\u{1b}[31mred\u{202e}", "kept as written");
        assert_eq!(location, "src/\u{1b}[8mhidden.rs:1:2");
        let shown = failure.to_string();
        assert_safe(&shown);
        assert_eq!(
            shown,
            "panicked at src/\\u{1b}[8mhidden.rs:1:2: \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\0\\0line two\n\\u{1b}[31mred\\u{202e}",
            "the message keeps its line break, the location has none"
        );
    }
}

#[test]
fn an_err_message_that_would_overwrite_the_line_before_is_shown_escaped() {
    for failure in failures("escapes_in_error") {
        assert_eq!(failure, TaskFailure::Failed("\u{1b}[1A\u{1b}[2Kfine\r".into()));
        assert_eq!(failure.to_string(), "failed: \\u{1b}[1A\\u{1b}[2Kfine\\r");
    }
}

#[test]
fn trap_frame_names_from_the_name_section_are_shown_escaped() {
    for failure in failures("escapes_in_frame_names") {
        let TaskFailure::Trap { frames, .. } = &failure else { panic!("not a trap: {failure:?}") };
        assert!(frames.iter().any(|f| f.contains("\u{1b}[31mevil")), "{frames:?}");
        let shown = failure.to_string();
        assert_safe(&shown);
        assert!(shown.contains("\\u{1b}[31mevil\\u{1b}[0m"), "{shown}");
    }
}

#[test]
fn task_names_types_and_docs_from_the_task_list_are_shown_escaped() {
    let pool = hostile_pool(wasmpool::WorkerKind::Threads, module("escapes_in_task_list")).build().unwrap();
    let task = pool.tasks().iter().find(|t| t.name == "attack").expect("the task is listed");
    assert_eq!(task.doc, "Looks\u{1b}[8m hidden\u{202e}.", "kept as written");
    let shown = task.to_string();
    assert_safe(&shown);
    assert_eq!(shown, "attack(\\u{1b}[2Jx: u32\\u{1b}]0;t\\u{7}) -> ()");
}

#[test]
fn a_task_name_that_is_an_escape_sequence_is_refused_and_quoted_escaped() {
    let error = hostile_pool(wasmpool::WorkerKind::Threads, module("escapes_in_task_name")).build().unwrap_err();
    assert!(matches!(module_error(&error), Some(ModuleError::Manifest(_))), "{error}");
    let shown = error.to_string();
    assert_safe(&shown);
    assert!(shown.contains("invalid task name"), "{shown}");
}

#[test]
fn an_unknown_task_name_is_quoted_escaped() {
    let pool = hostile_pool(wasmpool::WorkerKind::Threads, super::harmless()).build().unwrap();
    let Err(error) = pool.task("\u{1b}[2Jok") else { panic!("the task was found") };
    assert!(matches!(error, Error::NoSuchTask { .. }));
    assert_eq!(error.to_string(), "no task `\\u{1b}[2Jok`; the module has: ok");
}

each_kind! {
    fn captured_stdout_is_kept_as_written_and_escaped_for_a_terminal(kind) {
        let pool = Pool::builder()
            .module_bytes(module("escapes_in_stdout"))
            .workers(1)
            .worker_kind(kind)
            .wasi(WasiConfig::new())
            .disable_cache()
            .build()
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let captured = pool.task("attack").unwrap().call_captured::<_, u32>(()).unwrap();
        assert_eq!(captured.output.stdout, b"\x1b[2Jowned\0", "{kind:?}");
        assert_eq!(captured.output.stdout_for_terminal(), "\\u{1b}[2Jowned\\0", "{kind:?}");
    }
}
