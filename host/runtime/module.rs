//! Loading a task module: compile it once, check it against the ABI, and
//! read the list of tasks it describes.

use crate::error::{Error, ModuleError, Result};
use crate::runtime::cache;
use crate::sandbox::compile_limits;
use crate::sandbox::limits::{CompileLimits, Limits};
use crate::sandbox::wasi::WASI_MODULE;
use crate::text::EscapedLine;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use wasmpool_abi as abi;
use wasmtime::wasmparser::{ExternalKind, FunctionBody, KnownCustom, Name, Operator, Parser, Payload, TypeRef};
use wasmtime::{Engine, ExternType, Module, ValType};

/// One task the module offers, as its `wasmpool.tasks` section describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The name to pass to `call`, `map` and friends.
    pub name: String,
    /// The parameters, in order.
    pub params: Vec<ParamInfo>,
    /// The result type as written in the guest's source.
    pub result: String,
    /// The task's doc comment (may be empty).
    pub doc: String,
    /// Whether the module also offers the task's JSON entry point
    /// (`wasmpool_json_<name>`, added by the Rust SDK's `json` feature),
    /// which [`TaskRef::json`](crate::TaskRef::json) calls.
    pub json: bool,
}

/// One parameter of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// The parameter's name in the guest's source.
    pub name: String,
    /// Its type as written in the guest's source.
    pub ty: String,
    /// Its default value as written in the guest's source, if it has one
    /// (a task written in Python, `def scaled(x, factor=10)`): a call may
    /// leave it out. `None` for a required parameter (every Rust task's).
    pub default: Option<String>,
}

/// How many arguments a task takes: from `required` (its parameters
/// without a default) to `most` (all of them; [`Arity::UNBOUNDED`] for a
/// task written in Python with `*args`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    /// Its parameters without a default.
    pub required: usize,
    /// All its parameters, or [`Arity::UNBOUNDED`].
    pub most: usize,
}

impl Arity {
    /// `most` of a task that takes any number of further arguments.
    pub const UNBOUNDED: usize = usize::MAX;
}

impl TaskInfo {
    /// How many arguments the task takes. A parameter named `*name` (a
    /// task written in Python, `def f(x, *rest)`) takes any number.
    pub fn arity(&self) -> Arity {
        let rest = self.params.iter().any(|p| p.name.starts_with('*'));
        Arity {
            required: self.params.iter().filter(|p| p.default.is_none() && !p.name.starts_with('*')).count(),
            most: if rest { Arity::UNBOUNDED } else { self.params.len() },
        }
    }
}

impl fmt::Display for TaskInfo {
    /// `name(a: T, b: U) -> R`, like the function's signature, on one line:
    /// the module wrote every part of it, so each is escaped
    /// ([`EscapedLine`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", EscapedLine(&self.name))?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}: {}", EscapedLine(&p.name), EscapedLine(&p.ty))?;
            if let Some(default) = &p.default {
                write!(f, " = {}", EscapedLine(default))?;
            }
        }
        write!(f, ") -> {}", EscapedLine(&self.result))
    }
}

impl From<abi::TaskDescriptor> for TaskInfo {
    fn from(d: abi::TaskDescriptor) -> Self {
        TaskInfo {
            name: d.name,
            params: d.params.into_iter().map(|p| ParamInfo { name: p.name, ty: p.ty, default: None }).collect(),
            result: d.result,
            doc: d.doc,
            json: false,
        }
    }
}

/// A compiled, checked task module and its task list.
pub(crate) struct TaskModule {
    pub module: Module,
    /// Its tasks, in its records' order (the pool looks them up by name
    /// through [`catalog`](Self::catalog)).
    pub tasks: Vec<TaskInfo>,
    pub origin: String,
    /// Index among the module's defined globals of `__stack_pointer`, the
    /// stack pointer of the stack Rust and C guests keep in linear memory.
    pub stack_pointer: Option<u32>,
    /// What the module's load-time code may do (see [`LoadCode`]).
    pub load_code: LoadCode,
    /// Whether it imports WASI (a `wasm32-wasip1` build): its pool then
    /// runs it with WASI, granting only what the builder grants.
    pub wasi: bool,
    /// The bytes compiled: the module's own, rewritten so that every NaN
    /// that can be observed is canonical ([`crate::runtime::canonical_nans`]) and
    /// its mutable globals exported for resets ([`crate::runtime::fresh_state`]).
    pub code: Vec<u8>,
    /// How to reset an instance in place between tasks, or why it cannot be.
    pub reset: std::result::Result<crate::runtime::fresh_state::ResetPlan, String>,
}

/// Whether the guest code that runs while a module loads is sure to return:
/// code with no loop and no call (such as the SDK's
/// `wasmpool_abi_version`, a lone `i32.const`) ends within its own length,
/// anything else may run forever and needs a deadline it cannot escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LoadCode {
    /// The start function or `wasmpool_abi_version` may not return.
    pub may_hang: bool,
    /// `_initialize` (called in WASI pools) may not return.
    pub initialize_may_hang: bool,
}

/// What a module is checked against before and after compiling.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModuleRules {
    pub compile: CompileLimits,
    pub limits: Limits,
    /// Whether every NaN a task can observe must have the same bits on
    /// every CPU (the module is then rewritten before compiling).
    pub canonicalize_nans: bool,
    /// Whether the module's writes should mark their pages, for instances
    /// reset in place between tasks ([`crate::runtime::fresh_state`]).
    pub marks: bool,
}

/// Reads a module file, mapping I/O failures to [`Error::ModuleFile`].
pub(crate) fn read_module_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ModuleFile { path: path.to_owned(), source })
}

impl TaskModule {
    /// Compiles `bytes` and checks everything that can be checked without
    /// running it: the header, imports, exports and the task list.
    #[cfg(test)]
    pub(crate) fn compile(engine: &Engine, bytes: &[u8], origin: String) -> Result<TaskModule> {
        Self::compile_cached(engine, bytes, origin, None, &ModuleRules::default())
    }

    /// Like [`compile`](Self::compile), going through the module cache in
    /// `cache_dir` if given. Runs none of the module's code.
    pub(crate) fn compile_cached(
        engine: &Engine,
        bytes: &[u8],
        origin: String,
        cache_dir: Option<&Path>,
        rules: &ModuleRules,
    ) -> Result<TaskModule> {
        let invalid = |cause| Error::InvalidModule { origin: origin.clone(), cause };
        if bytes.is_empty() {
            return Err(invalid(ModuleError::Empty));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(invalid(ModuleError::NotWasm));
        }
        compile_limits::check(bytes, &rules.compile, &rules.limits).map_err(|l| invalid(ModuleError::Limit(l)))?;
        let PreparedCode { code, prepared, mut reset } = prepare_code(bytes, &origin, rules).map_err(invalid)?;
        if let Err(why) = &reset {
            tracing::debug!(module = %crate::text::escape_line(&origin), "every task gets a new instance: {}", crate::text::escape_line(why));
        }
        let (code, module) = match cache::compile(engine, &prepared, cache_dir) {
            Ok(module) => (prepared, Ok(module)),
            // The module as given says best why it does not compile; should
            // it compile, the preparation was at fault: no resets then.
            Err(_) if reset.is_ok() => {
                reset = Err("the module prepared for resets did not compile".into());
                let module = cache::compile(engine, &code, cache_dir);
                if module.is_ok() {
                    tracing::warn!(module = %crate::text::escape_line(&origin), "every task gets a new instance: the module prepared for resets in place did not compile");
                }
                (code, module)
            }
            Err(e) => (prepared, Err(e)),
        };
        let module = module.map_err(|e| invalid(ModuleError::Compile(format!("{e:#}"))))?;
        let wasi = check_imports(&module).map_err(invalid)?;
        check_fixed_exports(&module).map_err(invalid)?;
        let Sections { mut tasks, stack_pointer, load_code } = read_sections(bytes).map_err(invalid)?;
        let task_type = [ValType::I32, ValType::I32];
        for task in &mut tasks {
            check_func_export(&module, &abi::task_export_name(&task.name), &task_type, "a function (i32, i32) -> i32")
                .map_err(invalid)?;
            let json = abi::json_export_name(&task.name);
            if module.get_export(&json).is_some() {
                check_func_export(&module, &json, &task_type, "a function (i32, i32) -> i32").map_err(invalid)?;
                task.json = true;
            }
        }
        Ok(TaskModule { module, tasks, origin, stack_pointer, load_code, wasi, code, reset })
    }

    /// The module's tasks and origin, for the pool.
    pub(crate) fn catalog(&self) -> TaskCatalog {
        TaskCatalog::new(self.tasks.clone(), self.origin.clone())
    }
}

/// What a pool knows of its module's tasks, whatever the module's kind (a
/// core module or a component): their list, by name, and the module's
/// origin for messages.
pub(crate) struct TaskCatalog {
    pub tasks: Vec<TaskInfo>,
    by_name: HashMap<String, usize>,
    pub origin: String,
}

impl TaskCatalog {
    /// The catalog of `tasks`. A name given twice keeps its first task.
    pub(crate) fn new(tasks: Vec<TaskInfo>, origin: String) -> Self {
        let mut by_name = HashMap::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            by_name.entry(task.name.clone()).or_insert(i);
        }
        TaskCatalog { tasks, by_name, origin }
    }

    /// The task called `name`, or the error listing those that exist.
    pub(crate) fn task(&self, name: &str) -> Result<&TaskInfo> {
        self.by_name.get(name).and_then(|&i| self.tasks.get(i)).ok_or_else(|| {
            let mut available: Vec<String> = self.tasks.iter().map(|t| t.name.clone()).collect();
            available.sort_unstable();
            Error::NoSuchTask { task: name.to_owned(), available }
        })
    }
}

/// What the load-time rewrites make of a module's bytes, before compiling.
pub(crate) struct PreparedCode {
    /// The bytes rewritten so that every NaN a task can observe is canonical,
    /// if the rules ask for it (otherwise the bytes as given): what is
    /// compiled should `prepared` not compile.
    pub code: Vec<u8>,
    /// `code` prepared for resets in place (its mutable globals exported,
    /// and its writes marking their pages where the rules and the module
    /// allow), if `reset` is a plan; otherwise `code` again.
    pub prepared: Vec<u8>,
    /// How to reset an instance in place between tasks, or why it cannot be.
    pub reset: std::result::Result<crate::runtime::fresh_state::ResetPlan, String>,
}

/// Both load-time rewrites, in the order a pool applies them: canonical
/// NaNs first ([`crate::runtime::canonical_nans`], if
/// `rules.canonicalize_nans`), then the preparation for resets in place
/// ([`crate::runtime::fresh_state`]; writes marking their pages if
/// `rules.marks`, for memories of up to `rules.limits.max_memory` bytes).
/// [`TaskModule::compile_cached`] compiles what this returns; the spec-suite
/// test (`tests/spec_suite.rs`) runs it against the unrewritten module.
pub(crate) fn prepare_code(bytes: &[u8], origin: &str, rules: &ModuleRules) -> Result<PreparedCode, ModuleError> {
    // Whether `code` is known to be valid (the NaN rewrite validated it).
    let (code, validated) =
        if rules.canonicalize_nans { canonical_code(bytes, origin)? } else { (bytes.to_vec(), false) };
    let marks = rules.marks.then_some(rules.limits.max_memory as u64);
    let (prepared, reset) = crate::runtime::fresh_state::prepare(&code, marks, validated);
    Ok(PreparedCode { code, prepared, reset })
}

/// `bytes` rewritten so that every NaN a task can observe is canonical
/// (see [`crate::runtime::canonical_nans`]). Bytes that are not valid Wasm are
/// compiled as they are, for the compiler to say why precisely (nothing of
/// theirs runs); a valid module the rewrite fails on is refused, never run
/// with the CPU's NaNs unasked.
/// With the rewritten bytes comes whether they are valid (they are, unless
/// the module as given was not).
fn canonical_code(bytes: &[u8], origin: &str) -> Result<(Vec<u8>, bool), ModuleError> {
    match crate::runtime::canonical_nans::rewrite(bytes) {
        Ok((code, report)) => {
            tracing::debug!(
                module = %crate::text::escape_line(origin),
                lazy = report.lazy,
                eager = report.eager,
                checks = report.checks,
                "NaNs canonicalized where observable"
            );
            Ok((code, true))
        }
        Err(_) if crate::runtime::canonical_nans::validate(bytes).is_err() => Ok((bytes.to_vec(), false)),
        Err(why) => Err(ModuleError::NanRewrite(why)),
    }
}

/// The only imports a module may have are the SDK's host functions (the
/// panic reporter, the task seed, send and progress, with their exact
/// signatures), and WASI preview 1's functions (the linker checks their
/// signatures). Says whether it imports WASI.
fn check_imports(module: &Module) -> Result<bool, ModuleError> {
    let mut wasi = false;
    for import in module.imports() {
        if import.module() == WASI_MODULE && matches!(import.ty(), ExternType::Func(_)) {
            wasi = true;
            continue;
        }
        let allowed = import.module() == abi::HOST_MODULE
            && match (import.name(), import.ty()) {
                (abi::PANIC_IMPORT, ExternType::Func(f)) => {
                    f.params().len() == 6 && f.params().all(|p| matches!(p, ValType::I32)) && f.results().len() == 0
                }
                (abi::TASK_SEED_IMPORT, ExternType::Func(f)) => {
                    f.params().len() == 0 && f.results().len() == 1 && f.results().all(|r| matches!(r, ValType::I64))
                }
                (abi::SEND_IMPORT, ExternType::Func(f)) => {
                    f.params().len() == 2
                        && f.params().all(|p| matches!(p, ValType::I32))
                        && f.results().len() == 1
                        && f.results().all(|r| matches!(r, ValType::I32))
                }
                (abi::PROGRESS_IMPORT, ExternType::Func(f)) => {
                    f.params().len() == 2 && f.params().all(|p| matches!(p, ValType::I64)) && f.results().len() == 0
                }
                _ => false,
            };
        if !allowed {
            return Err(ModuleError::ForbiddenImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        }
    }
    Ok(wasi)
}

fn check_fixed_exports(module: &Module) -> Result<(), ModuleError> {
    match module.get_export(abi::MEMORY_EXPORT) {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => {}
        Some(_) => {
            return Err(ModuleError::WrongExportType {
                name: abi::MEMORY_EXPORT.into(),
                expected: "a 32-bit, unshared linear memory",
            });
        }
        None => {
            return Err(ModuleError::MissingExport { name: abi::MEMORY_EXPORT.into(), expected: "the linear memory" });
        }
    }
    check_func_export(module, abi::ABI_VERSION_EXPORT, &[], "a function () -> i32")?;
    check_func_export(module, abi::ALLOC_EXPORT, &[ValType::I32], "a function (i32) -> i32")
}

/// Checks that `name` is a function taking `params` and returning one i32.
fn check_func_export(
    module: &Module,
    name: &str,
    params: &[ValType],
    expected: &'static str,
) -> Result<(), ModuleError> {
    match module.get_export(name) {
        Some(ExternType::Func(f)) => {
            let params_ok = f.params().len() == params.len() && f.params().all(|p| matches!(p, ValType::I32));
            let results_ok = f.results().len() == 1 && f.results().all(|r| matches!(r, ValType::I32));
            if params_ok && results_ok {
                Ok(())
            } else {
                Err(ModuleError::WrongExportType { name: name.into(), expected })
            }
        }
        Some(_) => Err(ModuleError::WrongExportType { name: name.into(), expected }),
        None => Err(ModuleError::MissingExport { name: name.into(), expected }),
    }
}

/// What the host reads from a module's sections, in one pass after
/// wasmtime has validated it.
struct Sections {
    /// The decoded `wasmpool.tasks` records.
    tasks: Vec<TaskInfo>,
    /// The defined-global index of the global the name section calls
    /// `__stack_pointer` (as LLVM's linker names it), if any.
    stack_pointer: Option<u32>,
    /// Whether the code run at load is sure to return.
    load_code: LoadCode,
}

/// Reads the task list (every `wasmpool.tasks` custom section), finds
/// the stack pointer in the name section, and looks at the code that runs
/// while the module loads. One pass, linear in the module's size.
fn read_sections(bytes: &[u8]) -> Result<Sections, ModuleError> {
    let mut tasks_section = Vec::new();
    let mut imported_globals = 0u32;
    let mut imported_functions = 0u32;
    let mut stack_pointer = None;
    // Function indices of the start function, `wasmpool_abi_version` and
    // `_initialize` (sections come in this order: imports, exports, start, code).
    let mut start = None;
    let mut abi_version = None;
    let mut initialize = None;
    let mut load_code = LoadCode::default();
    let mut defined = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        // Wasmtime has validated the module already, so a parse error here
        // is unexpected; report it rather than trust the rest.
        match payload.map_err(|e| ModuleError::Manifest(e.to_string()))? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    match import.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Func(_) => imported_functions += 1,
                        _ => {}
                    }
                }
            }
            Payload::StartSection { func, .. } => start = Some(func),
            Payload::ExportSection(reader) => {
                for export in reader.into_iter().flatten() {
                    match (export.kind, export.name) {
                        (ExternalKind::Func, abi::ABI_VERSION_EXPORT) => abi_version = Some(export.index),
                        (ExternalKind::Func, "_initialize") => initialize = Some(export.index),
                        _ => {}
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported_functions + defined;
                defined += 1;
                // An imported function (a host function) always returns.
                if [start, abi_version].contains(&Some(index)) && may_not_return(&body) {
                    load_code.may_hang = true;
                }
                if initialize == Some(index) && may_not_return(&body) {
                    load_code.initialize_may_hang = true;
                }
            }
            Payload::CustomSection(custom) if custom.name() == abi::TASKS_SECTION => {
                tasks_section.extend_from_slice(custom.data());
            }
            Payload::CustomSection(custom) if stack_pointer.is_none() => {
                let KnownCustom::Name(names) = custom.as_known() else { continue };
                let globals = names.into_iter().flatten().filter_map(|name| match name {
                    Name::Global(map) => Some(map),
                    _ => None,
                });
                stack_pointer = globals
                    .flat_map(|map| map.into_iter().flatten())
                    .find(|naming| naming.name == "__stack_pointer")
                    .and_then(|naming| naming.index.checked_sub(imported_globals));
            }
            _ => {}
        }
    }
    let descriptors = abi::decode_manifest(&tasks_section).map_err(|e| ModuleError::Manifest(e.to_string()))?;
    Ok(Sections { tasks: descriptors.into_iter().map(TaskInfo::from).collect(), stack_pointer, load_code })
}

/// Whether a function body might run forever: it has a loop, a call, or an
/// atomic wait (anything else in Wasm runs forward and ends within the
/// body's length, bounded memory and table operations included). A body
/// that does not parse counts as one that might.
fn may_not_return(body: &FunctionBody<'_>) -> bool {
    let Ok(mut reader) = body.get_operators_reader() else { return true };
    while !reader.eof() {
        match reader.read() {
            Ok(
                Operator::Loop { .. }
                | Operator::Call { .. }
                | Operator::CallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. }
                | Operator::MemoryAtomicWait32 { .. }
                | Operator::MemoryAtomicWait64 { .. },
            ) => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(wat: &str) -> Result<TaskModule> {
        let bytes = wat::parse_str(wat).unwrap();
        TaskModule::compile(&Engine::default(), &bytes, "test".into())
    }

    fn cause(result: Result<TaskModule>) -> ModuleError {
        match result {
            Err(Error::InvalidModule { cause, .. }) => cause,
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("the module was accepted"),
        }
    }

    const FIXED_EXPORTS: &str = r#"
        (memory (export "memory") 1)
        (func (export "wasmpool_abi_version") (result i32) i32.const 1)
        (func (export "wasmpool_alloc") (param i32) (result i32) i32.const 16)
    "#;

    #[test]
    fn a_minimal_module_without_tasks_is_valid() {
        let m = compile(&format!("(module {FIXED_EXPORTS})")).unwrap();
        assert!(m.tasks.is_empty());
        assert!(matches!(m.catalog().task("x"), Err(Error::NoSuchTask { .. })));
    }

    #[test]
    fn empty_and_non_wasm_bytes_are_named_as_such() {
        let engine = Engine::default();
        assert_eq!(cause(TaskModule::compile(&engine, b"", "e".into())), ModuleError::Empty);
        assert_eq!(cause(TaskModule::compile(&engine, b"#!/bin/sh\necho", "s".into())), ModuleError::NotWasm);
        let whole = wat::parse_str(format!("(module {FIXED_EXPORTS})")).unwrap();
        let truncated = &whole[..whole.len() - 3];
        let c = cause(TaskModule::compile(&engine, truncated, "t".into()));
        assert!(matches!(c, ModuleError::Compile(_)), "{c:?}");
    }

    #[test]
    fn foreign_imports_are_refused_by_name() {
        let c = cause(compile(&format!(r#"(module (import "env" "open" (func (param i32))) {FIXED_EXPORTS})"#)));
        assert_eq!(c, ModuleError::ForbiddenImport { module: "env".into(), name: "open".into() });
        // The right name with the wrong signature is refused too.
        let c = cause(compile(&format!(r#"(module (import "wasmpool" "panic" (func (param i32))) {FIXED_EXPORTS})"#)));
        assert!(matches!(c, ModuleError::ForbiddenImport { .. }));
        let c =
            cause(compile(&format!(r#"(module (import "wasmpool" "task_seed" (func (result i32))) {FIXED_EXPORTS})"#)));
        assert!(matches!(c, ModuleError::ForbiddenImport { .. }), "{c:?}");
        // The seed import itself is fine.
        compile(&format!(r#"(module (import "wasmpool" "task_seed" (func (result i64))) {FIXED_EXPORTS})"#)).unwrap();
    }

    #[test]
    fn missing_and_mistyped_exports_are_named() {
        let c = cause(compile(r#"(module (memory (export "memory") 1))"#));
        assert_eq!(
            c,
            ModuleError::MissingExport { name: "wasmpool_abi_version".into(), expected: "a function () -> i32" }
        );
        let c = cause(compile(
            r#"(module (memory (export "memory") 1)
                (func (export "wasmpool_abi_version") (result i32) i32.const 1)
                (func (export "wasmpool_alloc") (param i64) (result i32) i32.const 0))"#,
        ));
        assert!(matches!(c, ModuleError::WrongExportType { ref name, .. } if name == "wasmpool_alloc"), "{c}");
        let c = cause(compile(r#"(module (func (export "wasmpool_abi_version") (result i32) i32.const 1))"#));
        assert!(matches!(c, ModuleError::MissingExport { ref name, .. } if name == "memory"), "{c}");
    }

    #[test]
    fn a_described_task_without_its_export_is_refused() {
        let record = abi::TaskDescriptor {
            version: abi::DESCRIPTOR_VERSION,
            name: "ghost".into(),
            params: vec![],
            result: "()".into(),
            doc: String::new(),
        }
        .encode();
        let data: String = record.iter().map(|b| format!("\\{b:02x}")).collect();
        let c = cause(compile(&format!(r#"(module {FIXED_EXPORTS} (@custom "wasmpool.tasks" "{data}"))"#)));
        assert_eq!(
            c,
            ModuleError::MissingExport { name: "wasmpool_task_ghost".into(), expected: "a function (i32, i32) -> i32" }
        );
    }

    #[test]
    fn a_garbled_task_list_is_refused() {
        let c = cause(compile(&format!(r#"(module {FIXED_EXPORTS} (@custom "wasmpool.tasks" "\01\ff\ff"))"#)));
        assert!(matches!(c, ModuleError::Manifest(_)), "{c}");
    }

    #[test]
    fn signatures_display_like_rust() {
        let t = TaskInfo {
            name: "add".into(),
            params: vec![
                ParamInfo { name: "a".into(), ty: "i64".into(), default: None },
                ParamInfo { name: "b".into(), ty: "i64".into(), default: None },
            ],
            result: "i64".into(),
            doc: String::new(),
            json: false,
        };
        assert_eq!(t.to_string(), "add(a: i64, b: i64) -> i64");
    }
}
