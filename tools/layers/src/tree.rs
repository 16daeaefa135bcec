//! The host library's module tree: from `host/lib.rs`, every `mod x;` to
//! `x.rs` or `x/mod.rs`, leaving out modules compiled only for tests.

use crate::paths::is_test_only;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A file of the tree and the module path it defines (`["pool",
/// "builder"]` for `host/pool/builder.rs`; empty for `lib.rs`).
pub struct SourceFile {
    /// Relative to host/'s parent, with `/`: `host/pool/builder.rs`.
    pub name: String,
    /// The module it defines.
    pub module: Vec<String>,
    /// Its text.
    pub text: String,
    /// Its syntax tree.
    pub syntax: syn::File,
}

/// Reads the tree under `root/host`, taking a file's text from `overrides`
/// (keyed by the file's name, `host/error.rs`) where it is there.
pub fn read(root: &Path, overrides: &BTreeMap<String, String>) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    let mut pending = vec![(PathBuf::from("host/lib.rs"), Vec::<String>::new())];
    while let Some((path, module)) = pending.pop() {
        let name = path.to_string_lossy().replace('\\', "/");
        let text = match overrides.get(&name) {
            Some(text) => text.clone(),
            None => std::fs::read_to_string(root.join(&path)).map_err(|e| format!("{name}: {e}"))?,
        };
        let syntax = syn::parse_file(&text).map_err(|e| {
            let at = e.span().start();
            format!("{name}:{}:{}: {e}", at.line, at.column + 1)
        })?;
        // A file's child modules live in its folder (lib.rs, mod.rs) or in
        // a folder of its name.
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let folder = match stem.as_str() {
            "lib" | "mod" => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            _ => path.with_extension(""),
        };
        for item in &syntax.items {
            let syn::Item::Mod(declared) = item else { continue };
            if declared.content.is_some() || is_test_only(&declared.attrs) {
                continue;
            }
            let child = declared.ident.to_string();
            let flat = folder.join(format!("{child}.rs"));
            let nested = folder.join(&child).join("mod.rs");
            let file = if root.join(&flat).exists()
                || overrides.contains_key(&flat.to_string_lossy().replace('\\', "/"))
            {
                flat
            } else if root.join(&nested).exists() {
                nested
            } else {
                return Err(format!("{name}: `mod {child};` has neither {} nor {}", flat.display(), nested.display()));
            };
            let mut path = module.clone();
            path.push(child);
            pending.push((file, path));
        }
        files.push(SourceFile { name, module, text, syntax });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
