//! A best-effort check of the host's Rust types against the types the
//! module declares for a task.
//!
//! Postcard is not self-describing: `3u32` sent to a task expecting `f64`
//! would be misread, not refused. Where both sides name a primitive type
//! (integers, floats, `bool`, `char`, strings, `()`), or the host passes a
//! tuple of the wrong length, the mismatch is reported before anything runs.
//! Anything else (structs, collections, aliases) is left to the decoder.

use crate::runtime::module::TaskInfo;

/// Checks the argument type `host` (from `std::any::type_name`) against the
/// task's parameters.
pub(crate) fn check_args(task: &TaskInfo, host: &str) -> Result<(), String> {
    let host = strip_refs(host);
    let parts: Vec<&str> = match (task.params.len(), split_tuple(host)) {
        (1, _) => vec![host],
        (_, Some(parts)) => parts,
        (_, None) => vec![host],
    };
    let host_is_countable = split_tuple(host).is_some() || canonical(host).is_some();
    if parts.len() != task.params.len() && host_is_countable {
        return Err(format!(
            "`{task}` takes {} argument(s), but the host passed {} (`{host}`)",
            task.params.len(),
            parts.len()
        ));
    }
    for (param, host_part) in task.params.iter().zip(&parts) {
        if let (Some(want), Some(got)) = (canonical(&param.ty), canonical(strip_refs(host_part)))
            && want != got
        {
            return Err(format!(
                "parameter `{}` of `{}` is `{}`, but the host passed `{}`",
                param.name, task.name, param.ty, host_part
            ));
        }
    }
    Ok(())
}

/// Checks the requested result type `host` against the task's result type.
pub(crate) fn check_result(task: &TaskInfo, host: &str) -> Result<(), String> {
    let declared = ok_type(&task.result);
    match (canonical(declared), canonical(host)) {
        (Some(want), Some(got)) if want != got => {
            Err(format!("`{}` returns `{}`, but the host asked for `{}`", task.name, declared, host))
        }
        _ => Ok(()),
    }
}

/// `T` for a declared `Result<T, E>`, else the type itself.
fn ok_type(declared: &str) -> &str {
    let Some(open) = declared.find('<') else { return declared };
    let head = &declared[..open];
    if !(head == "Result" || head.ends_with("::Result")) || !declared.ends_with('>') {
        return declared;
    }
    let inner = &declared[open + 1..declared.len() - 1];
    split_top_level(inner).first().copied().unwrap_or(declared)
}

fn strip_refs(mut ty: &str) -> &str {
    loop {
        ty = ty.trim();
        if let Some(rest) = ty.strip_prefix("&mut ") {
            ty = rest;
        } else if let Some(rest) = ty.strip_prefix('&') {
            if rest.trim_start() == "str" {
                return "&str";
            }
            ty = rest;
        } else {
            return ty;
        }
    }
}

/// The name both sides agree on for a primitive type, if `ty` is one.
fn canonical(ty: &str) -> Option<&'static str> {
    Some(match ty.trim() {
        "u8" => "u8",
        "u16" => "u16",
        "u32" => "u32",
        "u64" => "u64",
        "u128" => "u128",
        "usize" => "usize",
        "i8" => "i8",
        "i16" => "i16",
        "i32" => "i32",
        "i64" => "i64",
        "i128" => "i128",
        "isize" => "isize",
        "f32" => "f32",
        "f64" => "f64",
        "bool" => "bool",
        "char" => "char",
        "()" => "()",
        "&str" | "& str" | "&'static str" | "String" | "alloc::string::String" | "std::string::String" => "string",
        _ => return None,
    })
}

/// The elements of a tuple type `(A, B, …)`, or `None` if `ty` is not one.
fn split_tuple(ty: &str) -> Option<Vec<&str>> {
    let inner = ty.trim().strip_prefix('(')?.strip_suffix(')')?;
    // `(A) ` is just `A` in parentheses, and `(A)(B)` is no tuple at all.
    if !balanced(inner) {
        return None;
    }
    let parts = split_top_level(inner);
    if parts.len() == 1 && !inner.trim_end().ends_with(',') {
        return None;
    }
    Some(parts)
}

fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Splits at commas that are not nested in brackets; drops empty pieces.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::module::ParamInfo;

    fn task(params: &[(&str, &str)], result: &str) -> TaskInfo {
        TaskInfo {
            name: "t".into(),
            params: params
                .iter()
                .map(|(n, t)| ParamInfo { name: (*n).into(), ty: (*t).into(), default: None })
                .collect(),
            result: result.into(),
            doc: String::new(),
            json: false,
        }
    }

    #[test]
    fn matching_and_unknown_types_pass() {
        let sqrt = task(&[("x", "f64")], "f64");
        assert!(check_args(&sqrt, "f64").is_ok());
        assert!(check_args(&sqrt, "my::Wrapper").is_ok());
        let row = task(&[("y", "u32"), ("w", "u32"), ("h", "u32"), ("m", "u32")], "Vec<u8>");
        assert!(check_args(&row, "(u32, u32, u32, u32)").is_ok());
        assert!(check_result(&row, "alloc::vec::Vec<u8>").is_ok());
        let words = task(&[("text", "&str")], "u64");
        assert!(check_args(&words, "&alloc::string::String").is_ok());
        assert!(check_args(&words, "&&str").is_ok());
        assert!(check_args(&task(&[], "()"), "()").is_ok());
        // A single parameter that is itself a tuple.
        assert!(check_args(&task(&[("p", "(u32, u32)")], "()"), "(u32, u32)").is_ok());
        // Several parameters sent as one struct: not checkable, so allowed.
        assert!(check_args(&row, "my::RowArgs").is_ok());
    }

    #[test]
    fn primitive_mismatches_are_reported() {
        let sqrt = task(&[("x", "f64")], "f64");
        let e = check_args(&sqrt, "u32").unwrap_err();
        assert_eq!(e, "parameter `x` of `t` is `f64`, but the host passed `u32`");
        let e = check_result(&sqrt, "f32").unwrap_err();
        assert!(e.contains("returns `f64`"), "{e}");
        let parse = task(&[("s", "String")], "Result<i64, ParseIntError>");
        assert!(check_result(&parse, "i64").is_ok());
        assert!(check_result(&parse, "u8").is_err());
    }

    #[test]
    fn wrong_tuple_lengths_are_reported() {
        let add = task(&[("a", "i64"), ("b", "i64")], "i64");
        let e = check_args(&add, "(i64, i64, i64)").unwrap_err();
        assert!(e.contains("takes 2 argument(s), but the host passed 3"), "{e}");
        assert!(check_args(&add, "i64").is_err());
        assert!(check_args(&task(&[], "()"), "u8").is_err());
    }

    #[test]
    fn tuples_split_at_the_top_level_only() {
        assert_eq!(split_tuple("(Vec<(u8, u8)>, [u8; 3])"), Some(vec!["Vec<(u8, u8)>", "[u8; 3]"]));
        assert_eq!(split_tuple("(u8,)"), Some(vec!["u8"]));
        assert_eq!(split_tuple("()"), Some(vec![]));
        assert_eq!(split_tuple("(u8)"), None);
        assert_eq!(split_tuple("u8"), None);
        assert_eq!(ok_type("std::io::Result<u32>"), "u32");
    }
}
