//! At load: whether a module's instances can be reset in place, and what a
//! reset restores. One pass over the module, linear in its size.

use serde::{Deserialize, Serialize};
use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmtime::wasmparser::{ConstExpr, DataKind, ExternalKind, Operator, Parser, Payload, TypeRef, ValType};

/// The prefix of the exports added for the module's mutable globals (an
/// export is the only way the host reads and writes a global).
pub(crate) const GLOBAL_EXPORT_PREFIX: &str = "__wasmpool_reset_global_";

/// What resetting an instance of one module restores, besides the pages
/// its tasks dirtied: the initial image of its memory and its mutable
/// globals (by the names they are exported under).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ResetPlan {
    /// The active data segments of memory 0, in order.
    pub segments: Vec<DataSegment>,
    /// The export names of the mutable globals.
    pub globals: Vec<String>,
}

/// One active data segment: `bytes` written at `offset` at instantiation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct DataSegment {
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// `code` with its mutable globals exported (under
/// [`GLOBAL_EXPORT_PREFIX`]) and the plan to reset its instances; or `code`
/// unchanged and why its instances cannot be reset in place (they are then
/// created afresh for every task).
pub(crate) fn prepare(code: &[u8]) -> (Vec<u8>, Result<ResetPlan, String>) {
    match plan(code) {
        Ok((plan, rewritten)) => (rewritten, Ok(plan)),
        Err(why) => (code.to_vec(), Err(why)),
    }
}

fn plan(code: &[u8]) -> Result<(ResetPlan, Vec<u8>), String> {
    // No validation here: a module wasmtime refuses is never instantiated,
    // and one that does not parse gets no plan.
    let mut imported_globals = 0u32;
    let mut mutable = Vec::new();
    let mut memories = 0;
    let mut segments = Vec::new();
    let mut exports_seen = false;
    let mut out = wasm_encoder::Module::new();
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(|e| e.to_string())?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Func(_) | TypeRef::Tag(_) => {}
                        TypeRef::Memory(_) => return Err("it imports a memory".into()),
                        TypeRef::Table(_) => return Err("it imports a table".into()),
                        #[allow(unreachable_patterns)]
                        _ => return Err("it imports something other than functions and globals".into()),
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    let memory = memory.map_err(|e| e.to_string())?;
                    if memory.shared {
                        return Err("its memory is shared".into());
                    }
                    memories += 1;
                }
                if memories > 1 {
                    return Err("it has more than one memory".into());
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    let global = global.map_err(|e| e.to_string())?;
                    if !global.ty.mutable {
                        continue;
                    }
                    match global.ty.content_type {
                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128 => {}
                        ValType::Ref(_) => return Err("it has a mutable global of a reference type".into()),
                    }
                    mutable.push(imported_globals + i as u32);
                }
            }
            Payload::DataSection(reader) => {
                for data in reader.clone() {
                    let data = data.map_err(|e| e.to_string())?;
                    if let DataKind::Active { memory_index, offset_expr } = data.kind {
                        if memory_index != 0 {
                            return Err("a data segment is for another memory".into());
                        }
                        segments.push(DataSegment { offset: constant(&offset_expr)?, bytes: data.data.to_vec() });
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !reader.eof() {
                    if let Some(what) = changes_what_a_reset_keeps(&reader.read().map_err(|e| e.to_string())?) {
                        return Err(format!("its code uses {what}"));
                    }
                }
            }
            _ => {}
        }
        if let Payload::ExportSection(reader) = &payload {
            exports_seen = true;
            let mut exports = ExportSection::new();
            for export in reader.clone() {
                let export = export.map_err(|e| e.to_string())?;
                if export.name.starts_with(GLOBAL_EXPORT_PREFIX) {
                    return Err(format!("it exports a name starting with {GLOBAL_EXPORT_PREFIX}"));
                }
                exports.export(export.name, export_kind(export.kind)?, export.index);
            }
            for &index in &mutable {
                exports.export(&format!("{GLOBAL_EXPORT_PREFIX}{index}"), ExportKind::Global, index);
            }
            out.section(&exports);
        } else if let Some((id, range)) = payload.as_section() {
            out.section(&RawSection { id, data: &code[range] });
        }
    }
    if !exports_seen {
        return Err("it has no export section".into());
    }
    let globals = mutable.iter().map(|index| format!("{GLOBAL_EXPORT_PREFIX}{index}")).collect();
    Ok((ResetPlan { segments, globals }, out.finish()))
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
fn changes_what_a_reset_keeps(op: &Operator<'_>) -> Option<&'static str> {
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
        ExternalKind::Func => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
        #[allow(unreachable_patterns)]
        _ => return Err("it exports something of a kind the reset does not know".into()),
    })
}
