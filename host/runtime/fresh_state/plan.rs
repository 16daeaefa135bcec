//! At load: whether a module's instances can be reset in place, what a
//! reset restores, and the rewrite that makes it cheap (its mutable globals
//! exported; with marks, every write marking its page). One pass over the
//! module, linear in its size.

use super::write_marks::{self, MAP_EXPORT};
use serde::{Deserialize, Serialize};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, FunctionSection, MemorySection, MemoryType, RawSection, TypeSection,
};
use wasmtime::wasmparser::{
    CompositeInnerType, ConstExpr, DataKind, ExternalKind, Operator, Parser, Payload, TypeRef, ValType,
};

/// The prefix of the exports added for the module's mutable globals (an
/// export is the only way the host reads and writes a global).
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "__wasmpool_reset_global_";

/// What resetting an instance of one module restores, besides the pages
/// its tasks wrote: the initial image of its memory and its mutable
/// globals (by the names they are exported under).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ResetPlan {
    /// The active data segments of memory 0, in order.
    pub segments: Vec<DataSegment>,
    /// The export names of the mutable globals.
    pub globals: Vec<String>,
    /// Whether writes mark their pages in a map exported as
    /// [`MAP_EXPORT`] (otherwise the kernel's page scan finds them).
    pub marks: bool,
}

/// One active data segment: `bytes` written at `offset` at instantiation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct DataSegment {
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// `code` made ready to be reset in place, and the plan for it; or `code`
/// unchanged and why its instances cannot be reset (every task then gets a
/// new instance). With `marks: Some(max_memory)` writes are made to mark
/// their pages (see `write_marks.rs`) for memories of up to `max_memory`
/// bytes, where the module allows; otherwise only its mutable globals are
/// exported and the kernel's page scan finds the written pages.
///
/// `validated` says `code` is known to be valid Wasm; otherwise it is
/// validated here first. An invalid module gets no plan: adding a memory
/// could make code naming a memory it does not have valid, and let it
/// write the mark map.
pub(crate) fn prepare(code: &[u8], marks: Option<u64>, validated: bool) -> (Vec<u8>, Result<ResetPlan, String>) {
    if !validated && let Err(why) = crate::runtime::canonical_nans::validate(code) {
        return (code.to_vec(), Err(format!("it is not valid: {why}")));
    }
    if let Some(max_memory) = marks {
        match plan(code, Some(max_memory)) {
            Ok((plan, rewritten)) => return (rewritten, Ok(plan)),
            Err(why) => tracing::debug!("writes do not mark their pages ({why}); resets scan for them"),
        }
    }
    match plan(code, None) {
        Ok((plan, rewritten)) => (rewritten, Ok(plan)),
        Err(why) => (code.to_vec(), Err(why)),
    }
}

/// What the pass learns before the sections it rewrites.
#[derive(Default)]
struct Seen {
    /// Parameter counts of the types (0 for types that are not functions).
    type_params: Vec<u32>,
    imported_functions: u32,
    imported_globals: u32,
    /// Type index of each defined function.
    function_types: Vec<u32>,
    memories: u32,
    mutable_globals: Vec<u32>,
    segments: Vec<DataSegment>,
    exports_seen: bool,
    /// Code bodies seen so far.
    bodies: u32,
}

fn plan(code: &[u8], marks: Option<u64>) -> Result<(ResetPlan, Vec<u8>), String> {
    // No validation here: a module wasmtime refuses is never instantiated,
    // and one that does not parse gets no plan.
    let err = |e: wasmtime::wasmparser::BinaryReaderError| e.to_string();
    let reencode = |e: wasm_encoder::reencode::Error| format!("{e:?}");
    let mut seen = Seen::default();
    let mut out = wasm_encoder::Module::new();
    let mut code_section = CodeSection::new();
    // With marks: the index of the map memory, of the added function and of its type.
    let (map, mark_range, mark_type) = (1u32, &mut 0u32, &mut 0u32);
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::TypeSection(reader) => {
                for group in reader.clone() {
                    for ty in group.map_err(err)?.into_types() {
                        seen.type_params.push(match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        });
                    }
                }
                if marks.is_some() {
                    let mut types = TypeSection::new();
                    RoundtripReencoder.parse_type_section(&mut types, reader.clone()).map_err(reencode)?;
                    *mark_type = seen.type_params.len() as u32;
                    types.ty().function([wasm_encoder::ValType::I32, wasm_encoder::ValType::I32], []);
                    out.section(&types);
                    continue;
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(err)?;
                    match import.ty {
                        TypeRef::Global(_) => seen.imported_globals += 1,
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            seen.imported_functions += 1;
                            if marks.is_some() && import.module != wasmpool_abi::HOST_MODULE {
                                return Err(format!(
                                    "it imports {}, whose functions may write its memory",
                                    import.module
                                ));
                            }
                        }
                        TypeRef::Tag(_) => {}
                        TypeRef::Memory(_) => return Err("it imports a memory".into()),
                        TypeRef::Table(_) => return Err("it imports a table".into()),
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader.clone() {
                    seen.function_types.push(ty.map_err(err)?);
                }
                if marks.is_some() {
                    let mut functions = FunctionSection::new();
                    for &ty in &seen.function_types {
                        functions.function(ty);
                    }
                    *mark_range = seen.imported_functions + seen.function_types.len() as u32;
                    functions.function(*mark_type);
                    out.section(&functions);
                    continue;
                }
            }
            Payload::MemorySection(reader) => {
                let mut memories = MemorySection::new();
                for memory in reader.clone() {
                    let memory = memory.map_err(err)?;
                    if memory.shared {
                        return Err("its memory is shared".into());
                    }
                    if memory.memory64 && marks.is_some() {
                        return Err("its memory is 64-bit".into());
                    }
                    seen.memories += 1;
                    memories.memory(RoundtripReencoder.memory_type(memory).map_err(reencode)?);
                }
                if seen.memories > 1 {
                    return Err("it has more than one memory".into());
                }
                if let Some(max_memory) = marks {
                    let pages = write_marks::map_pages(max_memory);
                    memories.memory(MemoryType {
                        minimum: pages,
                        maximum: Some(pages),
                        memory64: false,
                        shared: false,
                        page_size_log2: None,
                    });
                    out.section(&memories);
                    continue;
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    let global = global.map_err(err)?;
                    if !global.ty.mutable {
                        continue;
                    }
                    match global.ty.content_type {
                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128 => {}
                        ValType::Ref(_) => return Err("it has a mutable global of a reference type".into()),
                    }
                    seen.mutable_globals.push(seen.imported_globals + i as u32);
                }
            }
            Payload::ExportSection(reader) => {
                seen.exports_seen = true;
                let mut exports = ExportSection::new();
                for export in reader.clone() {
                    let export = export.map_err(err)?;
                    if export.name.starts_with(GLOBAL_EXPORT_PREFIX) || export.name == MAP_EXPORT {
                        return Err(format!("it exports {}, a name wasmpool reserves", export.name));
                    }
                    exports.export(export.name, export_kind(export.kind)?, export.index);
                }
                for &index in &seen.mutable_globals {
                    exports.export(&format!("{GLOBAL_EXPORT_PREFIX}{index}"), ExportKind::Global, index);
                }
                if marks.is_some() {
                    exports.export(MAP_EXPORT, ExportKind::Memory, map);
                }
                out.section(&exports);
                continue;
            }
            Payload::DataSection(reader) => {
                for data in reader.clone() {
                    let data = data.map_err(err)?;
                    if let DataKind::Active { memory_index, offset_expr } = data.kind {
                        if memory_index != 0 {
                            return Err("a data segment is for another memory".into());
                        }
                        seen.segments.push(DataSegment { offset: constant(&offset_expr)?, bytes: data.data.to_vec() });
                    }
                }
            }
            Payload::CodeSectionStart { .. } if marks.is_some() => continue,
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader().map_err(err)?;
                while !reader.eof() {
                    if let Some(what) = changes_what_a_reset_keeps(&reader.read().map_err(err)?) {
                        return Err(format!("its code uses {what}"));
                    }
                }
                if marks.is_some() {
                    let ty = seen.function_types.get(seen.bodies as usize).copied();
                    let params = ty.and_then(|ty| seen.type_params.get(ty as usize)).copied();
                    let params = params.ok_or("a function body without a type")?;
                    match write_marks::rewrite_body(code, body, params, map, *mark_range)? {
                        Some(function) => code_section.function(&function),
                        None => code_section.raw(code.get(body.range()).ok_or("a body runs past the module's end")?),
                    };
                    seen.bodies += 1;
                    if seen.bodies as usize == seen.function_types.len() {
                        code_section.function(&write_marks::mark_range_body(map));
                        out.section(&code_section);
                    }
                }
                continue;
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            out.section(&RawSection { id, data: code.get(range).ok_or("a section runs past the module's end")? });
        }
    }
    if !seen.exports_seen {
        return Err("it has no export section".into());
    }
    if marks.is_some() && (seen.memories != 1 || seen.function_types.is_empty()) {
        return Err("it has no memory or no function of its own".into());
    }
    let globals = seen.mutable_globals.iter().map(|index| format!("{GLOBAL_EXPORT_PREFIX}{index}")).collect();
    Ok((ResetPlan { segments: seen.segments, globals, marks: marks.is_some() }, out.finish()))
}

/// The value of a data segment's offset, if it is a constant.
fn constant(expr: &ConstExpr<'_>) -> Result<u64, String> {
    let mut reader = expr.get_operators_reader();
    let value = match reader.read().map_err(|e| e.to_string())? {
        Operator::I32Const { value } => value as u32 as u64,
        Operator::I64Const { value } => value as u64,
        _ => return Err("a data segment's offset is not a constant".into()),
    };
    match reader.read().map_err(|e| e.to_string())? {
        Operator::End => Ok(value),
        _ => Err("a data segment's offset is not a constant".into()),
    }
}

/// What `op` changes that a reset does not restore (tables, dropped
/// segments, discarded memory), if anything.
pub(super) fn changes_what_a_reset_keeps(op: &Operator<'_>) -> Option<&'static str> {
    Some(match op {
        Operator::TableSet { .. }
        | Operator::TableGrow { .. }
        | Operator::TableFill { .. }
        | Operator::TableCopy { .. }
        | Operator::TableInit { .. } => "an instruction that changes a table",
        Operator::ElemDrop { .. } => "elem.drop",
        Operator::DataDrop { .. } => "data.drop",
        Operator::MemoryDiscard { .. } => "memory.discard",
        _ => return None,
    })
}

fn export_kind(kind: ExternalKind) -> Result<ExportKind, String> {
    Ok(match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    })
}
