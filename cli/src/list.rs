//! `wasmpool list`: the module's tasks, their argument and result types.

use crate::args::ListArgs;
use anyhow::Result;
use serde::Serialize;
use std::io::{ErrorKind, Write};
use wasmpool::TaskInfo;
use wasmpool::text::{escape_json, escape_line};

/// One task in `list --json`.
#[derive(Serialize)]
struct TaskRecord<'a> {
    name: &'a str,
    params: Vec<Param<'a>>,
    result: &'a str,
    doc: &'a str,
    json: bool,
}

#[derive(Serialize)]
struct Param<'a> {
    name: &'a str,
    ty: &'a str,
}

/// Prints every task: a signature and the first line of its doc comment,
/// or one JSON object per line with `--json`.
pub fn list(args: &ListArgs) -> Result<()> {
    let tasks = crate::pool::tasks(&crate::python_tasks::resolve(&args.module, &args.packages)?)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for task in &tasks {
        let line = if args.json { json_line(task)? } else { text_line(task) };
        match writeln!(out, "{line}") {
            Ok(()) => {}
            // The reader has gone (`wasmpool list … | head`): stop quietly.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    match out.flush() {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `name(a: T, b: U) -> R`, a note when the task cannot be run from the
/// command line, and the summary of its doc comment below, indented. The
/// module wrote all of it: the signature is escaped by its `Display`, the
/// summary here, each on its one line.
fn text_line(task: &TaskInfo) -> String {
    let mut text = task.to_string();
    if !task.json {
        text.push_str("  [no JSON entry point: not runnable with `wasmpool run`]");
    }
    let summary = summary(&task.doc);
    if !summary.is_empty() {
        text.push_str("\n    ");
        text.push_str(&escape_line(&summary));
    }
    text
}

/// A doc comment's first sentence (its first paragraph, as one line, if
/// that has no sentence end).
fn summary(doc: &str) -> String {
    let paragraph: Vec<&str> = doc.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    let paragraph = paragraph.join(" ");
    match paragraph.find(". ") {
        Some(end) => paragraph[..=end].to_owned(),
        None => paragraph,
    }
}

fn json_line(task: &TaskInfo) -> Result<String> {
    let record = TaskRecord {
        name: &task.name,
        params: task.params.iter().map(|p| Param { name: &p.name, ty: &p.ty }).collect(),
        result: &task.result,
        doc: &task.doc,
        json: task.json,
    };
    Ok(escape_json(&serde_json::to_string(&record)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmpool::ParamInfo;

    fn add() -> TaskInfo {
        TaskInfo {
            name: "add".into(),
            params: vec![
                ParamInfo { name: "a".into(), ty: "i64".into(), default: None },
                ParamInfo { name: "b".into(), ty: "i64".into(), default: None },
            ],
            result: "i64".into(),
            doc: "Adds.\nTwo numbers.".into(),
            json: true,
        }
    }

    #[test]
    fn the_summary_is_the_first_sentence() {
        assert_eq!(
            summary("Sorts its copy of `values` to find their median (`0.0` for none). The\ncopy is its own."),
            "Sorts its copy of `values` to find their median (`0.0` for none)."
        );
        assert_eq!(summary("Adds a\nand b\n\nMore."), "Adds a and b");
        assert_eq!(summary(""), "");
    }

    #[test]
    fn a_task_is_its_signature_and_doc() {
        assert_eq!(text_line(&add()), "add(a: i64, b: i64) -> i64\n    Adds.");
        let plain = TaskInfo { json: false, doc: String::new(), ..add() };
        assert!(text_line(&plain).ends_with("not runnable with `wasmpool run`]"));
        assert_eq!(
            json_line(&add()).unwrap(),
            r#"{"name":"add","params":[{"name":"a","ty":"i64"},{"name":"b","ty":"i64"}],"result":"i64","doc":"Adds.\nTwo numbers.","json":true}"#
        );
    }
}
