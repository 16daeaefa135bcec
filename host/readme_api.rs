//! The README's "API in one table" names every public method of the types a
//! user calls: a method added without a row fails this test. The sources
//! and the README are read at compile time, so the test runs the same in
//! every build (Wine and qemu included), and moving a file breaks it loudly.

/// The README's table, from its heading to the next section.
fn api_table() -> &'static str {
    let readme = include_str!("../README.md");
    let start = readme.find("## The API in one table").expect("the README has the API table");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Each source file with the types whose public methods the table lists.
const SOURCES: [(&str, &str, &[&str]); 8] = [
    ("pool/builder.rs", include_str!("pool/builder.rs"), &["PoolBuilder"]),
    ("pool/mod.rs", include_str!("pool/mod.rs"), &["Pool"]),
    ("pool/task_ref.rs", include_str!("pool/task_ref.rs"), &["TaskRef"]),
    ("pool/json.rs", include_str!("pool/json.rs"), &["JsonTask"]),
    ("pool/handle.rs", include_str!("pool/handle.rs"), &["TaskHandle"]),
    ("pool/exchange.rs", include_str!("pool/exchange.rs"), &["Exchange"]),
    ("cluster/setup.rs", include_str!("cluster/setup.rs"), &["Cluster"]),
    ("process/config.rs", include_str!("process/config.rs"), &["ProcessConfig"]),
];

/// The type an inherent `impl` line (at the start of a line) is for, if
/// it is one: `impl<'a> TaskRef<'a> {` gives `TaskRef`.
fn inherent_impl(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("impl")?;
    let rest = if rest.starts_with('<') { &rest[rest.find('>')? + 1..] } else { rest };
    let rest = rest.strip_prefix(' ')?;
    if !rest.trim_end().ends_with('{') || rest.contains(" for ") {
        return None;
    }
    let name: &str = rest.split(|c: char| !c.is_alphanumeric() && c != '_').next()?;
    Some(name)
}

/// Every `pub fn` in an inherent impl of one of `types` in `source`, as
/// (type, method). Items marked `#[doc(hidden)]` are left out.
fn public_methods<'a>(source: &'a str, types: &[&str]) -> Vec<(&'a str, &'a str)> {
    let mut found = Vec::new();
    let mut current = None;
    let mut hidden = false;
    for line in source.lines() {
        if let Some(name) = inherent_impl(line) {
            current = types.contains(&name).then_some(name);
        } else if line == "}" {
            current = None;
        } else if let Some(ty) = current {
            let trimmed = line.trim_start();
            if trimmed.starts_with("#[doc(hidden)]") {
                hidden = true;
            } else if let Some(rest) = line.strip_prefix("    pub fn ") {
                let name = rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("");
                if !hidden {
                    found.push((ty, name));
                }
                hidden = false;
            } else if !trimmed.starts_with("#[") && !trimmed.starts_with("///") {
                hidden = false;
            }
        }
    }
    found
}

/// Whether `table` shows a call of `method`: `.name(`, `::name(` or
/// `` `name( `` (a `TaskHandle`'s methods are listed bare), or the same
/// with type arguments (`.name::<`).
fn lists(table: &str, method: &str) -> bool {
    [format!("{method}("), format!("{method}::<")].iter().any(|call| {
        table.match_indices(call.as_str()).any(|(i, _)| i > 0 && matches!(table.as_bytes()[i - 1], b'.' | b':' | b'`'))
    })
}

#[test]
fn the_readme_table_lists_every_public_method_of_the_call_api() {
    let table = api_table();
    let mut missing = Vec::new();
    let mut seen = 0;
    for (file, source, types) in SOURCES {
        let methods = public_methods(source, types);
        assert!(!methods.is_empty(), "no public methods found in host/{file}: has the layout changed?");
        seen += methods.len();
        missing.extend(
            methods.into_iter().filter(|(_, m)| !lists(table, m)).map(|(t, m)| format!("{t}::{m} (host/{file})")),
        );
    }
    assert!(seen > 50, "only {seen} public methods found");
    assert!(missing.is_empty(), "README.md's API table does not mention: {}", missing.join(", "));
}

#[test]
fn the_scanner_finds_methods_of_the_named_impls_only() {
    let source = "impl<'a> TaskRef<'a> {\n    /// Doc.\n    pub fn shown(&self) {}\n    #[doc(hidden)]\n    pub fn hidden(&self) {}\n    fn private(&self) {}\n}\nimpl Drop for TaskRef<'_> {\n    pub fn not_inherent(&self) {}\n}\nimpl Other {\n    pub fn other(&self) {}\n}\n";
    assert_eq!(public_methods(source, &["TaskRef"]), vec![("TaskRef", "shown")]);
    assert!(lists("`pool.task(n)?.shown()`", "shown"));
    assert!(lists("`wait()`", "wait"));
    assert!(lists("`pool.exchange::<M, R>()`", "exchange"));
    assert!(!lists("`pool.wait_timeout(d)`", "timeout"));
    assert!(!lists("`pool.await_all()`", "all"));
}
