//! The layer table, read from the diagram in docs/architecture.md under
//! "## The host library's layers": one layer per group of lines between
//! `│` lines, named in the first column, holding every `host/X/` folder or
//! `X.rs` file of host/'s top level that its lines name.

use std::collections::BTreeMap;

/// The layers, top first, and each top-level module's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// The layers' names and modules, top first.
    pub layers: Vec<(String, Vec<String>)>,
    rank: BTreeMap<String, usize>,
}

/// The heading the table sits under.
pub const HEADING: &str = "## The host library's layers";

impl Layers {
    /// Parses the table from the architecture document's text; `exists`
    /// says whether a name is a top-level module of host/ (a folder or a
    /// `.rs` file there).
    pub fn parse(doc: &str, exists: &dyn Fn(&str) -> bool) -> Result<Layers, String> {
        let section = doc.split(&format!("\n{HEADING}\n")).nth(1).ok_or(format!("no \"{HEADING}\" section"))?;
        let block = section.split("```text\n").nth(1).and_then(|rest| rest.split("\n```").next());
        let block = block.ok_or(format!("no ```text diagram under \"{HEADING}\""))?;
        let mut layers: Vec<(String, Vec<String>)> = Vec::new();
        let mut rank = BTreeMap::new();
        // The names' column ends where the first line's `host/` starts.
        let column = block.lines().find_map(|line| line.find("host/")).ok_or("the diagram names no host/ folder")?;
        let mut new_layer = true;
        for line in block.lines() {
            if line.trim() == "│" || line.trim().is_empty() {
                new_layer = true;
                continue;
            }
            let column = if line.is_char_boundary(column.min(line.len())) { column.min(line.len()) } else { 0 };
            let name = line[..column].trim();
            if new_layer {
                if name.is_empty() {
                    return Err(format!("a layer without a name in its first column: {line:?}"));
                }
                layers.push((name.to_owned(), Vec::new()));
                new_layer = false;
            } else if !name.is_empty() {
                return Err(format!("a second layer name without a `│` line before it: {line:?}"));
            }
            let index = layers.len() - 1;
            for word in line[column..].split(|c: char| c.is_whitespace() || "(),".contains(c)) {
                let module = if let Some(folder) = word.strip_prefix("host/") {
                    folder.trim_end_matches('/').trim_end_matches(".rs")
                } else if let Some(file) = word.strip_suffix(".rs") {
                    file
                } else {
                    continue;
                };
                if module.contains('/') || !exists(module) {
                    continue;
                }
                if let Some(other) = rank.insert(module.to_owned(), index) {
                    if other != index {
                        return Err(format!(
                            "`{module}` is in two layers: {} and {}",
                            layers[other].0, layers[index].0
                        ));
                    }
                    continue;
                }
                layers[index].1.push(module.to_owned());
            }
        }
        if let Some((name, _)) = layers.iter().find(|(_, modules)| modules.is_empty()) {
            return Err(format!("the layer \"{name}\" names no module of host/"));
        }
        Ok(Layers { layers, rank })
    }

    /// A top-level module's layer: its index (0 is the top) and name.
    pub fn layer_of(&self, module: &str) -> Option<(usize, &str)> {
        self.rank.get(module).map(|&rank| (rank, self.layers[rank].0.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_layers_and_their_modules_and_skips_files_inside_folders() {
        let doc = "x\n## The host library's layers\n\n```text\n top    host/pool/  Pool (handle.rs)\n             and more\n        host/cluster/ one\n   │\n bottom host/error.rs (errors), text.rs,\n        seed.rs\n```\n";
        let exists =
            |name: &str| ["pool", "cluster", "error", "text", "seed", "handle"].contains(&name) && name != "handle";
        let layers = Layers::parse(doc, &exists).unwrap();
        assert_eq!(
            layers.layers,
            vec![
                ("top".to_owned(), vec!["pool".to_owned(), "cluster".to_owned()]),
                ("bottom".to_owned(), vec!["error".to_owned(), "text".to_owned(), "seed".to_owned()]),
            ]
        );
        assert_eq!(layers.layer_of("cluster"), Some((0, "top")));
        assert_eq!(layers.layer_of("handle"), None);
    }

    #[test]
    fn a_module_in_two_layers_or_an_empty_layer_is_an_error() {
        let exists = |_: &str| true;
        let two = "## The host library's layers\n```text\n a host/x/\n │\n b host/x/\n```\n";
        assert!(Layers::parse(&format!("\n{two}"), &exists).unwrap_err().contains("two layers"));
        let empty = "\n## The host library's layers\n```text\n a host/x/\n │\n b   nothing here\n```\n";
        assert!(Layers::parse(empty, &exists).unwrap_err().contains("names no module"));
    }
}
