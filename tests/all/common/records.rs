//! Modules with many task records, for the load-time tests and benchmark:
//! one task function exported under `n` names, and `n` records describing
//! them (so the size grows with `n` and nothing else does).

use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};
use wasmpool_abi::{DESCRIPTOR_VERSION, TaskDescriptor};

/// What is wrong with the module, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Every record has its export.
    Valid,
    /// The last record repeats the first one's name.
    Duplicated,
    /// The last record's task is not exported.
    MissingExport,
}

/// The name of task `i`.
pub fn task_name(i: usize) -> String {
    format!("t{i}")
}

/// A module with `n` task records (`n` ≥ 2), each task returning `42u32`.
pub fn module_with_records(n: usize, shape: Records) -> Vec<u8> {
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]); // 0: wasmpool_abi_version
    types.ty().function([ValType::I32], [ValType::I32]); // 1: wasmpool_alloc
    types.ty().function([ValType::I32, ValType::I32], [ValType::I32]); // 2: a task
    let mut functions = FunctionSection::new();
    for ty in [0, 1, 2] {
        functions.function(ty);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export(wasmpool_abi::ABI_VERSION_EXPORT, ExportKind::Func, 0);
    exports.export(wasmpool_abi::ALLOC_EXPORT, ExportKind::Func, 1);
    let exported = if shape == Records::MissingExport { n - 1 } else { n };
    for i in 0..exported {
        exports.export(&wasmpool_abi::task_export_name(&task_name(i)), ExportKind::Func, 2);
    }

    let mut code = CodeSection::new();
    for value in [wasmpool_abi::ABI_VERSION as i32, 1024, 0] {
        let mut body = Function::new([]);
        body.instruction(&Instruction::I32Const(value)).instruction(&Instruction::End);
        code.function(&body);
    }
    // The result header at 0: status OK, 1 byte at 16, which is 42.
    let mut data = DataSection::new();
    data.active(0, &ConstExpr::i32_const(0), [0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0]);
    data.active(0, &ConstExpr::i32_const(16), [42]);

    let mut records = Vec::new();
    for i in 0..n {
        let name = if shape == Records::Duplicated && i == n - 1 { task_name(0) } else { task_name(i) };
        let record = TaskDescriptor {
            version: DESCRIPTOR_VERSION,
            name,
            params: vec![],
            result: "u32".into(),
            doc: String::new(),
        };
        records.extend(record.encode());
    }

    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code)
        .section(&data)
        .section(&CustomSection { name: wasmpool_abi::TASKS_SECTION.into(), data: records.into() });
    module.finish()
}
