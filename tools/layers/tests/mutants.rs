//! The checker against the real tree and against mutants of it: each
//! mutant puts one forbidden import (or cycle) into a copy of a file held
//! in memory, and the check must name it. Each test first checks that its
//! anchor was found, so none can pass by changing nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasmpool_layers::{Report, check};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The check with `file`'s text changed: `anchor` replaced by `with`.
fn mutant(file: &str, anchor: &str, with: &str) -> Report {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    assert_eq!(text.matches(anchor).count(), 1, "{file} no longer holds the anchor {anchor:?} once");
    let overrides = BTreeMap::from([(file.to_owned(), text.replacen(anchor, with, 1))]);
    check(&root(), &overrides).unwrap()
}

#[test]
fn the_tree_as_it_is_passes() {
    let report = check(&root(), &BTreeMap::new()).unwrap();
    assert!(report.passed(), "{report:#?}");
    assert!(report.files > 50 && report.references > 500, "{report:#?}");
}

#[test]
fn an_upward_import_inside_a_from_attribute_is_caught() {
    let report = mutant(
        "host/error.rs",
        "pub enum Error {\n",
        "pub enum Error {\n    #[error(transparent)]\n    Mutant(#[from] crate::cluster::ClusterError),\n",
    );
    assert!(
        report.upward.iter().any(|v| v.starts_with("host/error.rs:")
            && v.contains("crate::cluster::ClusterError names cluster (call API) from error (leaves)")),
        "{report:#?}"
    );
}

#[test]
fn an_upward_call_inside_an_error_attribute_is_caught() {
    let report = mutant(
        "host/error.rs",
        "pub enum Error {\n",
        "pub enum Error {\n    #[error(\"{}\", crate::process::locate::worker_file_name())]\n    Mutant,\n",
    );
    assert!(
        report.upward.iter().any(|v| v.contains("crate::process::locate::worker_file_name names process")),
        "{report:#?}"
    );
}

#[test]
fn an_upward_import_inside_a_grouped_use_is_caught() {
    let report = mutant(
        "host/sandbox/limits.rs",
        "use crate::error::SettingsError;\n",
        "use crate::{error::SettingsError, pool::{Pool, Settings}};\n",
    );
    let found: Vec<&String> = report.upward.iter().filter(|v| v.starts_with("host/sandbox/limits.rs:3:")).collect();
    assert_eq!(found.len(), 2, "{report:#?}");
    assert!(found[0].contains("crate::pool::Pool names pool (call API) from sandbox (sandbox)"), "{found:?}");
}

#[test]
fn a_new_cycle_between_files_is_caught() {
    let report = mutant(
        "host/scheduler/chunking.rs",
        "use std::num::NonZeroUsize;\n",
        "use std::num::NonZeroUsize;\nuse super::stream::Imap;\n",
    );
    assert!(report.upward.is_empty(), "{report:#?}");
    assert!(
        report.new_cycles.iter().any(|c| c == "files: host/scheduler/chunking.rs host/scheduler/stream.rs (2 imports)"),
        "{report:#?}"
    );
}

#[test]
fn a_cycle_between_modules_of_one_layer_is_caught() {
    // worker and process are both in the workers layer: no layer is
    // crossed, but process already uses worker.
    let report = mutant(
        "host/worker/mod.rs",
        "use crate::error::TaskFailure;\n",
        "use crate::error::TaskFailure;\nuse crate::process::config::ProcessConfig;\n",
    );
    assert!(report.upward.is_empty(), "{report:#?}");
    let cycle = report.new_cycles.iter().find(|c| c.starts_with("modules: "));
    assert!(cycle.is_some_and(|c| c.contains(" process ") && c.contains(" worker (")), "{report:#?}");
}

#[test]
fn paths_in_text_docs_tests_and_visibilities_are_not_imports() {
    let report = mutant(
        "host/error.rs",
        "pub enum Error {\n",
        "pub const MUTANT: &str = \"crate::pool::Pool\";\n/// See crate::pool::Pool.\npub(in crate::pool) struct Mutant;\n#[cfg(test)]\nmod mutant_tests {\n    use crate::pool::Pool;\n}\npub enum Error {\n",
    );
    assert!(report.passed(), "{report:#?}");
}

#[test]
fn a_new_import_inside_a_listed_cycle_is_caught() {
    // instance.rs, outbox.rs and store_core.rs already import one another.
    let report = mutant(
        "host/runtime/outbox.rs",
        "use crate::runtime::instance::Outcome;\n",
        "use crate::runtime::instance::Outcome;\nuse super::store_core::StoreCore;\n",
    );
    assert!(
        report.new_cycles.iter().any(|c| c.contains("host/runtime/outbox.rs host/runtime/store_core.rs")),
        "{report:#?}"
    );
    assert_eq!(report.gone_cycles.len(), 1, "{report:#?}");
}

#[test]
fn a_glob_import_of_the_root_is_caught() {
    let report = mutant(
        "host/sandbox/limits.rs",
        "use crate::error::SettingsError;\n",
        "use crate::error::SettingsError;\nuse crate::*;\n",
    );
    assert!(report.upward.iter().any(|v| v.starts_with("host/sandbox/limits.rs:4: crate::* names `*`")), "{report:#?}");
}

#[test]
fn a_listed_cycle_that_is_gone_must_be_struck() {
    let cycles = std::fs::read_to_string(root().join("tools/layers/cycles.txt")).unwrap();
    let overrides = BTreeMap::from([(
        "tools/layers/cycles.txt".to_owned(),
        format!("{cycles}files: host/seed.rs host/spin.rs (2 imports)\n"),
    )]);
    let report = check(&root(), &overrides).unwrap();
    assert_eq!(report.gone_cycles, ["files: host/seed.rs host/spin.rs (2 imports)"], "{report:#?}");
}
