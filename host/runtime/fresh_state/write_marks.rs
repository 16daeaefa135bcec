//! Memory marked as it is written: a load-time rewrite after which every
//! write to linear memory also marks the 1 KiB granule it wrote (a "page"
//! here: [`PAGE_SHIFT`]) in a second memory (the *mark map*, one byte per
//! granule) that the module's own code cannot address. A reset then reads
//! the map instead of asking the kernel which pages were written: a few
//! hundred nanoseconds, on every system.
//!
//! Each store (plain, atomic, SIMD, lane) of one byte is followed by
//! `map[(address + offset) >> 10] = 1`; a wider store by `0x0101` stored
//! there as an `i32.store16`, which marks its granule and the next, so a
//! store that straddles two granules marks both. (Marking exactly the page of the
//! last byte too takes five more instructions per store: a map storing
//! every float it computed ran 23 % slower with them, against 0.4 % with
//! one mark; `cargo bench --bench nan_cost -- --opt-out reset`.) Atomic
//! read-modify-writes are followed by the same mark; `memory.fill`, `memory.copy` and
//! `memory.init` call a function added to the module that marks every page
//! of their destination range. The mark comes after the write: a write out
//! of bounds traps before it, so every mark's address fits in 32 bits.
//!
//! The host marks what it writes itself (a task's arguments). A module
//! that imports functions other than the SDK's (WASI: its functions write
//! into guest memory) is not rewritten; its instances are reset with the
//! kernel's page scan where there is one.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{Function, Instruction, MemArg, ValType as EncodedType};
use wasmtime::wasmparser::{FunctionBody, MemArg as ParsedMemArg, Operator, ValType};

/// The export name of the mark map.
pub(crate) const MAP_EXPORT: &str = "__wasmpool_written_pages";

/// log2 of the granule a mark stands for: 1 KiB. A store marks its
/// granule and the next (no store is wider than 16 bytes), and a reset
/// copies back what is marked: a task that writes a few hundred bytes here
/// and there (its stack frames, its arguments, the allocator's state)
/// costs a reset of a few KiB. With 4 KiB granules a `sqrt` map spent
/// about a fifth of its time in the reset's `memset` and `memcpy`.
pub(crate) const PAGE_SHIFT: u32 = 10;

/// Wasm pages of a mark map covering a memory of at most `max_memory`
/// bytes (one byte per granule, and one to spare).
pub(crate) fn map_pages(max_memory: u64) -> u64 {
    let entries = (max_memory >> PAGE_SHIFT) + 2;
    entries.div_ceil(65536)
}

/// The shape of a write: what lies on the stack above its address.
#[derive(Clone, Copy)]
enum Shape {
    /// `[address, value]` → `[]` (stores).
    Store(ValType),
    /// `[address, value]` → `[old]` (atomic read-modify-write).
    Rmw(ValType),
    /// `[address, expected, replacement]` → `[old]`.
    Cmpxchg(ValType),
    /// `[destination, value or source, length]` (all i32) → `[]`.
    Bulk,
}

/// The memory write `op` makes: its shape, memory argument (not for bulk
/// writes) and width in bytes.
fn write_of(op: &Operator<'_>) -> Option<(Shape, Option<ParsedMemArg>, u32)> {
    use Operator::*;
    use ValType::*;
    let (shape, memarg, width) = match *op {
        I32Store8 { memarg } | I32AtomicStore8 { memarg } => (Shape::Store(I32), memarg, 1),
        I32Store16 { memarg } | I32AtomicStore16 { memarg } => (Shape::Store(I32), memarg, 2),
        I32Store { memarg } | I32AtomicStore { memarg } => (Shape::Store(I32), memarg, 4),
        I64Store8 { memarg } | I64AtomicStore8 { memarg } => (Shape::Store(I64), memarg, 1),
        I64Store16 { memarg } | I64AtomicStore16 { memarg } => (Shape::Store(I64), memarg, 2),
        I64Store32 { memarg } | I64AtomicStore32 { memarg } => (Shape::Store(I64), memarg, 4),
        I64Store { memarg } | I64AtomicStore { memarg } => (Shape::Store(I64), memarg, 8),
        F32Store { memarg } => (Shape::Store(F32), memarg, 4),
        F64Store { memarg } => (Shape::Store(F64), memarg, 8),
        V128Store8Lane { memarg, .. } => (Shape::Store(V128), memarg, 1),
        V128Store16Lane { memarg, .. } => (Shape::Store(V128), memarg, 2),
        V128Store32Lane { memarg, .. } => (Shape::Store(V128), memarg, 4),
        V128Store64Lane { memarg, .. } => (Shape::Store(V128), memarg, 8),
        V128Store { memarg } => (Shape::Store(V128), memarg, 16),
        I32AtomicRmw8AddU { memarg }
        | I32AtomicRmw8SubU { memarg }
        | I32AtomicRmw8AndU { memarg }
        | I32AtomicRmw8OrU { memarg }
        | I32AtomicRmw8XorU { memarg }
        | I32AtomicRmw8XchgU { memarg } => (Shape::Rmw(I32), memarg, 1),
        I32AtomicRmw16AddU { memarg }
        | I32AtomicRmw16SubU { memarg }
        | I32AtomicRmw16AndU { memarg }
        | I32AtomicRmw16OrU { memarg }
        | I32AtomicRmw16XorU { memarg }
        | I32AtomicRmw16XchgU { memarg } => (Shape::Rmw(I32), memarg, 2),
        I32AtomicRmwAdd { memarg }
        | I32AtomicRmwSub { memarg }
        | I32AtomicRmwAnd { memarg }
        | I32AtomicRmwOr { memarg }
        | I32AtomicRmwXor { memarg }
        | I32AtomicRmwXchg { memarg } => (Shape::Rmw(I32), memarg, 4),
        I64AtomicRmw8AddU { memarg }
        | I64AtomicRmw8SubU { memarg }
        | I64AtomicRmw8AndU { memarg }
        | I64AtomicRmw8OrU { memarg }
        | I64AtomicRmw8XorU { memarg }
        | I64AtomicRmw8XchgU { memarg } => (Shape::Rmw(I64), memarg, 1),
        I64AtomicRmw16AddU { memarg }
        | I64AtomicRmw16SubU { memarg }
        | I64AtomicRmw16AndU { memarg }
        | I64AtomicRmw16OrU { memarg }
        | I64AtomicRmw16XorU { memarg }
        | I64AtomicRmw16XchgU { memarg } => (Shape::Rmw(I64), memarg, 2),
        I64AtomicRmw32AddU { memarg }
        | I64AtomicRmw32SubU { memarg }
        | I64AtomicRmw32AndU { memarg }
        | I64AtomicRmw32OrU { memarg }
        | I64AtomicRmw32XorU { memarg }
        | I64AtomicRmw32XchgU { memarg } => (Shape::Rmw(I64), memarg, 4),
        I64AtomicRmwAdd { memarg }
        | I64AtomicRmwSub { memarg }
        | I64AtomicRmwAnd { memarg }
        | I64AtomicRmwOr { memarg }
        | I64AtomicRmwXor { memarg }
        | I64AtomicRmwXchg { memarg } => (Shape::Rmw(I64), memarg, 8),
        I32AtomicRmw8CmpxchgU { memarg } => (Shape::Cmpxchg(I32), memarg, 1),
        I32AtomicRmw16CmpxchgU { memarg } => (Shape::Cmpxchg(I32), memarg, 2),
        I32AtomicRmwCmpxchg { memarg } => (Shape::Cmpxchg(I32), memarg, 4),
        I64AtomicRmw8CmpxchgU { memarg } => (Shape::Cmpxchg(I64), memarg, 1),
        I64AtomicRmw16CmpxchgU { memarg } => (Shape::Cmpxchg(I64), memarg, 2),
        I64AtomicRmw32CmpxchgU { memarg } => (Shape::Cmpxchg(I64), memarg, 4),
        I64AtomicRmwCmpxchg { memarg } => (Shape::Cmpxchg(I64), memarg, 8),
        MemoryFill { .. } | MemoryCopy { .. } | MemoryInit { .. } => return Some((Shape::Bulk, None, 0)),
        _ => return None,
    };
    Some((shape, Some(memarg), width))
}

/// Scratch locals a rewritten function gets: the address, and two values
/// of each type a write may take.
struct Scratch {
    address: u32,
    /// First of two locals per type, in the order of [`SCRATCH_TYPES`].
    values: u32,
}

const SCRATCH_TYPES: [ValType; 5] = [ValType::I32, ValType::I64, ValType::F32, ValType::F64, ValType::V128];

impl Scratch {
    fn value(&self, ty: ValType, second: bool) -> u32 {
        let slot = SCRATCH_TYPES.iter().position(|t| *t == ty).unwrap_or(0) as u32;
        self.values + 2 * slot + u32::from(second)
    }
}

/// Why a function cannot be rewritten (the module is then reset with the
/// kernel's scan, or not at all).
pub(crate) type Refusal = String;

/// `body` (of a function with `params` parameters) rewritten so that every
/// write to memory 0 also marks its pages in memory `map`, calling
/// `mark_range` (a function index) for bulk writes. `None` if the function
/// writes nothing: it is copied as it is.
pub(crate) fn rewrite_body(
    code: &[u8],
    body: &FunctionBody<'_>,
    params: u32,
    map: u32,
    mark_range: u32,
) -> Result<Option<Function>, Refusal> {
    let err = |e: wasmtime::wasmparser::BinaryReaderError| e.to_string();
    // First pass: does it write at all, and does it store SIMD values?
    let (mut writes, mut simd) = (false, false);
    let mut reader = body.get_operators_reader().map_err(err)?;
    while !reader.eof() {
        if let Some((shape, memarg, _)) = write_of(&reader.read().map_err(err)?) {
            if memarg.is_some_and(|m| m.memory != 0) {
                return Err("a store to a memory other than the first".into());
            }
            writes = true;
            simd |= matches!(shape, Shape::Store(ValType::V128));
        }
    }
    if !writes {
        return Ok(None);
    }
    let mut locals = Vec::new();
    let mut count = u64::from(params);
    for local in body.get_locals_reader().map_err(err)? {
        let (n, ty) = local.map_err(err)?;
        count += u64::from(n);
        let ty = RoundtripReencoder.val_type(ty).map_err(|e| format!("{e:?}"))?;
        locals.push((n, ty));
    }
    // The engine allows 50,000 locals per function.
    if count + 1 + 2 * SCRATCH_TYPES.len() as u64 > 50_000 {
        return Err("a function with too many locals to add scratch ones".into());
    }
    let scratch = Scratch { address: count as u32, values: count as u32 + 1 };
    locals.push((1, EncodedType::I32));
    // v128 comes last, and only where a SIMD value is stored (a module
    // without SIMD must not get a v128 local).
    for ty in SCRATCH_TYPES.into_iter().filter(|&ty| simd || ty != ValType::V128) {
        locals.push((2, RoundtripReencoder.val_type(ty).map_err(|e| format!("{e:?}"))?));
    }
    let mut function = Function::new(locals);
    let mut reader = body.get_operators_reader().map_err(err)?;
    while !reader.eof() {
        let start = reader.original_position();
        let op = reader.read().map_err(err)?;
        let original = code.get(start..reader.original_position()).ok_or("an instruction past the module's end")?;
        let Some((shape, memarg, width)) = write_of(&op) else {
            function.raw(original.iter().copied());
            continue;
        };
        let offset = memarg.map_or(0, |m| m.offset);
        match shape {
            Shape::Store(ty) | Shape::Rmw(ty) => {
                let value = scratch.value(ty, false);
                function.instruction(&Instruction::LocalSet(value));
                function.instruction(&Instruction::LocalTee(scratch.address));
                function.instruction(&Instruction::LocalGet(value));
                function.raw(original.iter().copied());
                mark(&mut function, &scratch, offset, width, map);
            }
            Shape::Cmpxchg(ty) => {
                let (expected, replacement) = (scratch.value(ty, false), scratch.value(ty, true));
                function.instruction(&Instruction::LocalSet(replacement));
                function.instruction(&Instruction::LocalSet(expected));
                function.instruction(&Instruction::LocalTee(scratch.address));
                function.instruction(&Instruction::LocalGet(expected));
                function.instruction(&Instruction::LocalGet(replacement));
                function.raw(original.iter().copied());
                mark(&mut function, &scratch, offset, width, map);
            }
            Shape::Bulk => {
                if let Operator::MemoryFill { mem } | Operator::MemoryInit { mem, .. } = op
                    && mem != 0
                {
                    return Err("a bulk write to a memory other than the first".into());
                }
                if let Operator::MemoryCopy { dst_mem, src_mem } = op
                    && (dst_mem != 0 || src_mem != 0)
                {
                    return Err("a copy between memories other than the first".into());
                }
                let (second, length) = (scratch.value(ValType::I32, false), scratch.value(ValType::I32, true));
                function.instruction(&Instruction::LocalSet(length));
                function.instruction(&Instruction::LocalSet(second));
                function.instruction(&Instruction::LocalTee(scratch.address));
                function.instruction(&Instruction::LocalGet(second));
                function.instruction(&Instruction::LocalGet(length));
                function.raw(original.iter().copied());
                function.instruction(&Instruction::LocalGet(scratch.address));
                function.instruction(&Instruction::LocalGet(length));
                function.instruction(&Instruction::Call(mark_range));
            }
        }
    }
    Ok(Some(function))
}

/// `map[(address + offset) >> PAGE_SHIFT] = 1` for a one-byte write; for
/// a wider one the next granule is marked too (it may straddle two, and no
/// write is wider than 16 bytes).
fn mark(function: &mut Function, scratch: &Scratch, offset: u64, width: u32, map: u32) {
    function.instruction(&Instruction::LocalGet(scratch.address));
    if offset != 0 {
        function.instruction(&Instruction::I32Const(offset as u32 as i32));
        function.instruction(&Instruction::I32Add);
    }
    function.instruction(&Instruction::I32Const(PAGE_SHIFT as i32));
    function.instruction(&Instruction::I32ShrU);
    if width > 1 {
        function.instruction(&Instruction::I32Const(0x0101));
        function.instruction(&Instruction::I32Store16(MemArg { offset: 0, align: 0, memory_index: map }));
    } else {
        function.instruction(&Instruction::I32Const(1));
        function.instruction(&Instruction::I32Store8(MemArg { offset: 0, align: 0, memory_index: map }));
    }
}

/// The function added to the module: `(destination, length)` marks every
/// page of `destination .. destination + length` (nothing if `length` is
/// 0). Called after the write succeeded, so the range lies in memory.
pub(crate) fn mark_range_body(map: u32) -> Function {
    use Instruction::*;
    let (destination, length, page, last) = (0, 1, 2, 3);
    let mut f = Function::new([(2, EncodedType::I32)]);
    let store = MemArg { offset: 0, align: 0, memory_index: map };
    for instruction in [
        LocalGet(length),
        I32Eqz,
        BrIf(0),
        LocalGet(destination),
        I32Const(PAGE_SHIFT as i32),
        I32ShrU,
        LocalSet(page),
        // destination + length - 1 may wrap to 2^32 - 1 only when the range
        // ends at 4 GiB, which is then exactly the last byte.
        LocalGet(destination),
        LocalGet(length),
        I32Add,
        I32Const(1),
        I32Sub,
        I32Const(PAGE_SHIFT as i32),
        I32ShrU,
        LocalSet(last),
        Block(wasm_encoder::BlockType::Empty),
        Loop(wasm_encoder::BlockType::Empty),
        LocalGet(page),
        I32Const(1),
        I32Store8(store),
        LocalGet(page),
        LocalGet(last),
        I32GeU,
        BrIf(1),
        LocalGet(page),
        I32Const(1),
        I32Add,
        LocalSet(page),
        Br(0),
        End,
        End,
        End,
    ] {
        f.instruction(&instruction);
    }
    f
}
