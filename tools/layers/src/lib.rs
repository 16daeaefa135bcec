//! Checks the host library's architecture by parsing its Rust (`syn`):
//!
//! 1. **Layers.** Every path into the crate a file of `host/` names (in a
//!    `use`, grouped or not, in code and types, in an attribute such as
//!    `#[from]` or `#[error(…)]`, in a macro call) names a module of the
//!    file's own layer or of one below, as docs/architecture.md's table
//!    orders them. The named module counts: `crate::cluster::X` from a
//!    leaf goes up even if `X` is defined lower.
//! 2. **Cycles between files**, and between top-level modules: each group
//!    of them that import one another must be listed in
//!    `tools/layers/cycles.txt` with the number of imports inside it, and
//!    each listed one must still exist: a new group, or a new import inside
//!    a listed one, fails, and a group that is gone or shrank is struck.
//!
//! Items compiled only for tests, doc comments, string literals and
//! visibilities are not imports. `cargo run -p wasmpool-layers` runs it.

pub mod graph;
pub mod paths;
pub mod table;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Each import that goes up a layer, or names a module in no layer,
    /// as `host/file.rs:line: …`.
    pub upward: Vec<String>,
    /// Cycles between files, and between top-level modules, that
    /// cycles.txt does not list.
    pub new_cycles: Vec<String>,
    /// Cycles cycles.txt lists that no longer exist.
    pub gone_cycles: Vec<String>,
    /// Files read, paths into the crate found, and cycles allowed.
    pub files: usize,
    /// Paths into the crate found.
    pub references: usize,
}

impl Report {
    /// Whether the architecture holds.
    pub fn passed(&self) -> bool {
        self.upward.is_empty() && self.new_cycles.is_empty() && self.gone_cycles.is_empty()
    }
}

/// The allowed cycles' file, under the repository's root.
pub const CYCLES: &str = "tools/layers/cycles.txt";
/// The architecture document, under the repository's root.
pub const ARCHITECTURE: &str = "docs/architecture.md";

/// Checks the repository at `root`, reading a file's text from
/// `overrides` where it is there (keyed as `host/error.rs`,
/// `docs/architecture.md` or `tools/layers/cycles.txt`): the mutant tests
/// change files that way.
pub fn check(root: &Path, overrides: &BTreeMap<String, String>) -> Result<Report, String> {
    let read = |name: &str| match overrides.get(name) {
        Some(text) => Ok(text.clone()),
        None => std::fs::read_to_string(root.join(name)).map_err(|e| format!("{name}: {e}")),
    };
    let exists = |module: &str| {
        let host = root.join("host");
        host.join(module).is_dir() || host.join(format!("{module}.rs")).is_file()
    };
    let layers = table::Layers::parse(&read(ARCHITECTURE)?, &exists).map_err(|e| format!("{ARCHITECTURE}: {e}"))?;
    let files = tree::read(root, overrides)?;

    let mut module_file: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut exports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut names = Vec::new();
    for file in &files {
        let found = paths::names(&file.syntax, &file.module);
        module_file.insert(file.module.clone(), file.name.clone());
        exports.insert(file.module.clone(), found.exports.iter().cloned().collect());
        names.push(found.references);
    }
    let resolver = Resolver { module_file: &module_file, exports: &exports };

    let mut report = Report { files: files.len(), ..Report::default() };
    let mut file_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut module_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, references) in files.iter().zip(&names) {
        let Some(own) = file.module.first() else { continue }; // lib.rs: the root re-exports all
        let Some((own_rank, own_layer)) = layers.layer_of(own) else {
            report.upward.push(format!("{}: the module `{own}` is in no layer of {ARCHITECTURE}", file.name));
            continue;
        };
        for reference in references {
            report.references += 1;
            let shown = format!("crate::{}", reference.segments.join("::"));
            let Some(named) = resolver.top_module(&reference.segments) else { continue };
            match layers.layer_of(&named) {
                None => report.upward.push(format!(
                    "{}:{}: {shown} names `{named}`, which is in no layer of {ARCHITECTURE}",
                    file.name, reference.line
                )),
                Some((rank, layer)) if rank < own_rank => report.upward.push(format!(
                    "{}:{}: {shown} names {named} ({layer}) from {own} ({own_layer})",
                    file.name, reference.line
                )),
                Some(_) => {}
            }
            if named != *own {
                module_edges.entry(own.clone()).or_default().insert(named.clone());
            }
            if let Some(target) = resolver.file(&reference.segments)
                && target != file.name
                && target != "host/lib.rs"
            {
                file_edges.entry(file.name.clone()).or_default().insert(target);
            }
        }
    }

    let allowed = read(CYCLES)?;
    let allowed: BTreeSet<String> = allowed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut present = BTreeSet::new();
    for (kind, edges) in [("files", &file_edges), ("modules", &module_edges)] {
        for cycle in graph::cycles(edges) {
            // The imports inside the group: one more is one more cycle,
            // even among files already listed.
            let inside: usize = cycle
                .iter()
                .map(|from| edges.get(from).map_or(0, |to| to.iter().filter(|t| cycle.contains(t)).count()))
                .sum();
            let line = format!("{kind}: {} ({inside} imports)", cycle.join(" "));
            if !allowed.contains(&line) {
                report.new_cycles.push(line.clone());
            }
            present.insert(line);
        }
    }
    report.gone_cycles = allowed.difference(&present).cloned().collect();
    Ok(report)
}

/// Where a path into the crate leads.
struct Resolver<'a> {
    module_file: &'a BTreeMap<Vec<String>, String>,
    exports: &'a BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
}

impl Resolver<'_> {
    /// The top-level module a path names: its first segment, or for an
    /// item of the root (`crate::Pool`), the module the root re-exports
    /// it from.
    fn top_module(&self, segments: &[String]) -> Option<String> {
        let first = segments.first()?;
        if self.module_file.contains_key(std::slice::from_ref(first)) {
            return Some(first.clone());
        }
        let root = self.exports.get(&Vec::new())?;
        root.get(first).and_then(|target| target.first().cloned()).or_else(|| Some(first.clone()))
    }

    /// The file that defines what a path names: its longest prefix that
    /// is a module, then that module's re-exports, followed.
    fn file(&self, segments: &[String]) -> Option<String> {
        let mut path = segments.to_vec();
        for _ in 0..16 {
            let known = (0..=path.len()).rev().find(|&n| self.module_file.contains_key(&path[..n]))?;
            let module = path[..known].to_vec();
            let followed = path.get(known).and_then(|next| self.exports.get(&module)?.get(next));
            match followed {
                Some(target) if *target != path[..=known] => {
                    let mut next = target.clone();
                    next.extend_from_slice(&path[known + 1..]);
                    path = next;
                }
                _ => return self.module_file.get(&module).cloned(),
            }
        }
        None
    }
}
