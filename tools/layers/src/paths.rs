//! Every path into the crate that a file names, where the compiler would
//! see it: `use` trees (grouped ones too), paths in code and types, the
//! tokens of attributes and macro calls (`#[error("…", crate::x::f())]`,
//! `format!`), and serde's string paths (`#[serde(with = "crate::x")]`).
//! Doc comments, string literals, visibilities (`pub(in crate::x)`) and
//! items compiled only for tests are not code and are left out.

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// A path into the crate, made absolute (from the crate's root), and the
/// line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The path's segments from the crate's root: `["cluster",
    /// "ClusterError"]` for `crate::cluster::ClusterError`.
    pub segments: Vec<String>,
    /// The line it starts on.
    pub line: usize,
}

/// Whether `#[cfg(…)]` among `attrs` makes an item exist only in tests:
/// `cfg(test)`, or `all(…)` with such a part, or `any(…)` made only of
/// them. `not(test)` is not.
pub fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        if !attr.path().is_ident("cfg") {
            return false;
        }
        let Ok(meta) = attr.parse_args::<syn::Meta>() else { return false };
        test_only(&meta)
    })
}

fn test_only(meta: &syn::Meta) -> bool {
    match meta {
        syn::Meta::Path(path) => path.is_ident("test"),
        syn::Meta::List(list) => {
            let parts =
                list.parse_args_with(syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated);
            let Ok(parts) = parts else { return false };
            if list.path.is_ident("all") {
                parts.iter().any(test_only)
            } else if list.path.is_ident("any") {
                !parts.is_empty() && parts.iter().all(test_only)
            } else {
                false
            }
        }
        syn::Meta::NameValue(_) => false,
    }
}

/// What a file names and re-exports.
#[derive(Debug, Default)]
pub struct Names {
    /// The paths into the crate it names.
    pub references: Vec<Reference>,
    /// The names its `pub`, `pub(crate)` or `pub(super)` uses bring into
    /// its module, and the absolute paths they stand for.
    pub exports: Vec<(String, Vec<String>)>,
}

/// What `file` names and re-exports; `module` is the module the file
/// defines.
pub fn names(file: &syn::File, module: &[String]) -> Names {
    let mut collector = Collector {
        module: module.to_vec(),
        children: child_modules(&file.items),
        file_depth: module.len(),
        ..Collector::default()
    };
    for item in &file.items {
        collector.visit_item(item);
    }
    Names { references: collector.found, exports: collector.exports }
}

/// The modules `items` declare (`mod x;` or `mod x { … }`), not for tests.
fn child_modules(items: &[syn::Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(declared) if !is_test_only(&declared.attrs) => Some(declared.ident.to_string()),
            _ => None,
        })
        .collect()
}

#[derive(Default)]
struct Collector {
    /// The module being read (inline modules push onto it).
    module: Vec<String>,
    /// Its child modules, which a `use` may name without `self::`.
    children: Vec<String>,
    found: Vec<Reference>,
    exports: Vec<(String, Vec<String>)>,
    /// Whether the `use` being read re-exports (at the file's own level).
    exporting: bool,
    /// The length of the file's own module path.
    file_depth: usize,
}

impl Collector {
    /// Records `segments` if they lead into the crate, made absolute.
    fn record(&mut self, segments: &[String], line: usize, in_use: bool) {
        let Some(first) = segments.first() else { return };
        let mut absolute = self.module.clone();
        let rest = match first.as_str() {
            "crate" => {
                absolute.clear();
                &segments[1..]
            }
            "self" => &segments[1..],
            "super" => {
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    absolute.pop();
                    rest = &rest[1..];
                }
                rest
            }
            // A child module named bare in a `use` (edition 2018 paths).
            name if in_use && self.children.iter().any(|child| child == name) => segments,
            _ => return,
        };
        absolute.extend(rest.iter().cloned());
        if !absolute.is_empty() {
            self.found.push(Reference { segments: absolute, line });
        }
    }

    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(&path.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.use_leaf(prefix, &name.ident, &name.ident),
            syn::UseTree::Rename(rename) => self.use_leaf(prefix, &rename.ident, &rename.rename),
            syn::UseTree::Glob(glob) => {
                let line = glob.star_token.span.start().line;
                let before = self.found.len();
                self.record(&prefix.clone(), line, true);
                // `use crate::*` (or `super::*` up to the root) names
                // everything the root re-exports: "*", in no layer.
                if self.found.len() == before
                    && prefix.first().is_some_and(|p| ["crate", "super", "self"].contains(&p.as_str()))
                {
                    self.found.push(Reference { segments: vec!["*".to_owned()], line });
                }
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(tree, prefix);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident, name: &syn::Ident) {
        let mut path = prefix.to_vec();
        // `use crate::x::{self}` names x.
        if ident != "self" {
            path.push(ident.to_string());
        }
        let before = self.found.len();
        self.record(&path, ident.span().start().line, true);
        if self.exporting && self.found.len() > before {
            let name = if name == "self" { prefix.last().cloned().unwrap_or_default() } else { name.to_string() };
            let target = self.found[before].segments.clone();
            self.exports.push((name, target));
        }
    }

    /// The paths in tokens syn leaves unparsed: `crate`, `self` or `super`
    /// followed by `::` and names, and, in an attribute (`literals`),
    /// string literals that are such paths (serde's `with = "crate::…"`).
    fn tokens(&mut self, tokens: TokenStream, literals: bool) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(group) => self.tokens(group.stream(), literals),
                TokenTree::Ident(ident) if ["crate", "self", "super"].contains(&ident.to_string().as_str()) => {
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(TokenTree::Ident(next))) =
                        (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.record(&segments, ident.span().start().line, false);
                        i = j;
                        continue;
                    }
                }
                TokenTree::Literal(literal) if literals => {
                    let text = literal.to_string();
                    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
                    if let Some(inner) = inner
                        && ["crate::", "self::", "super::"].iter().any(|p| inner.starts_with(p))
                        && let Ok(path) = syn::parse_str::<syn::Path>(inner)
                    {
                        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
                        self.record(&segments, literal.span().start().line, false);
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// The attributes of an item, where it has them.
fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_test_only(item_attrs(item)) {
            return;
        }
        if let syn::Item::Mod(declared) = item
            && let Some((_, items)) = &declared.content
        {
            for attr in &declared.attrs {
                self.visit_attribute(attr);
            }
            let children = std::mem::replace(&mut self.children, child_modules(items));
            self.module.push(declared.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.module.pop();
            self.children = children;
            return;
        }
        visit::visit_item(self, item);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if !is_test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        for attr in &item.attrs {
            self.visit_attribute(attr);
        }
        if item.leading_colon.is_some() {
            return; // `::name`: another crate
        }
        // Only the file's own module's re-exports are followed.
        self.exporting = !matches!(item.vis, syn::Visibility::Inherited) && self.module.len() == self.file_depth;
        self.use_tree(&item.tree, &mut Vec::new());
        self.exporting = false;
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none()
            && let Some(first) = path.segments.first()
        {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.record(&segments, first.ident.span().start().line, false);
        }
        visit::visit_path(self, path);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(in crate::pool)` restricts who may see an item: no import.
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // `#[doc = "…"]` and the like hold text; lists hold tokens.
        if let syn::Meta::List(list) = &attr.meta {
            self.tokens(list.tokens.clone(), true);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(code: &str, module: &[&str]) -> Vec<String> {
        let file = syn::parse_file(code).unwrap();
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        names(&file, &module).references.into_iter().map(|r| format!("{}:{}", r.line, r.segments.join("::"))).collect()
    }

    #[test]
    fn grouped_uses_relative_paths_and_children_are_resolved() {
        let code = "mod child;\nuse crate::{text::EscapedLine, pool::{Pool, Settings as S}};\nuse super::sibling::X;\nuse self::child::Y;\nuse child::Z;\nuse std::fmt;\nuse crate::worker::{self, jobs::*};\n";
        assert_eq!(
            found(code, &["sandbox", "limits"]),
            [
                "2:text::EscapedLine",
                "2:pool::Pool",
                "2:pool::Settings",
                "3:sandbox::sibling::X",
                "4:sandbox::limits::child::Y",
                "5:sandbox::limits::child::Z",
                "7:worker",
                "7:worker::jobs",
            ]
        );
    }

    #[test]
    fn attributes_and_macro_tokens_are_read_but_not_text_docs_or_tests() {
        let code = r#"
/// Not code: crate::cluster::Doc.
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("{}", crate::process::locate::worker_file_name())]
    Missing,
}
#[derive(serde::Deserialize)]
struct S { #[serde(with = "crate::decode::bytes")] b: Vec<u8> }
fn f() { let _ = "crate::pool::Text"; tracing::info!(x = %crate::seed::Seed::new(), "crate::pool::Pool"); }
pub(in crate::pool) fn g() {}
#[cfg(test)]
mod tests { use crate::pool::Pool; }
#[cfg(all(test, unix))]
fn t() { crate::pool::f(); }
#[cfg(not(test))]
fn u() { crate::spin::go(); }
"#;
        assert_eq!(
            found(code, &["error"]),
            [
                "5:cluster::ClusterError",
                "6:process::locate::worker_file_name",
                "10:decode::bytes",
                "11:seed::Seed::new",
                "18:spin::go",
            ]
        );
    }

    #[test]
    fn public_uses_are_exports_under_their_names() {
        let file = syn::parse_file("pub use setup::{Cluster, lead as start};\npub(crate) use crate::error::ClusterError;\nuse crate::text::Line;\nmod setup;\n").unwrap();
        let exports = names(&file, &["cluster".to_owned()]).exports;
        let shown: Vec<String> = exports.iter().map(|(name, path)| format!("{name}={}", path.join("::"))).collect();
        assert_eq!(
            shown,
            ["Cluster=cluster::setup::Cluster", "start=cluster::setup::lead", "ClusterError=error::ClusterError"]
        );
    }

    #[test]
    fn a_glob_of_the_root_names_everything() {
        assert_eq!(found("use crate::*;\nuse super::*;\nuse super::x::*;\n", &["pool"]), ["1:*", "2:*", "3:x"]);
    }

    #[test]
    fn inline_modules_move_super_and_self() {
        let code = "mod inner { use super::x::A; fn f() { self::g(); } }\n";
        assert_eq!(found(code, &["pool"]), ["1:pool::x::A", "1:pool::inner::g"]);
    }
}
