//! Bit-identical NaNs at native speed: a rewrite of the module at load.
//!
//! Wasm leaves the sign and payload of a NaN made by float arithmetic to
//! the CPU (x86-64 gives `0.0 / 0.0` a negative NaN, aarch64 a positive
//! one). Cranelift's NaN canonicalization pins them by following every
//! float operation with a check and a select, which costs up to two thirds
//! of a float loop's speed. Yet a NaN's bits can only be observed where they
//! leave float arithmetic: a float store, a reinterpretation as an integer,
//! the sign operand of `copysign`, a global, a call's arguments or results,
//! a value that meets another at a branch or a `select`. This pass rewrites
//! each function so that the values arriving there carry exactly the bits
//! Cranelift's canonicalization would have given them, and leaves the
//! arithmetic between alone. Loops that keep their floats in locals and
//! store integers (Mandelbrot, Monte Carlo) then pay nothing.
//!
//! # How
//!
//! Every float value on the operand stack and in every local is given a
//! kind: `Plain` (never a NaN), `Exact` (bits Wasm defines exactly:
//! loaded, constant, a parameter, a call's result, or already canonical),
//! `Arith` (made by arithmetic: a NaN here has the CPU's bits, where
//! Cranelift would have the positive canonical NaN) or `ArithNeg` (the
//! negation of an `Arith`: Cranelift would have the negative canonical
//! NaN). Where an `Arith` or `ArithNeg` value is observed, a check and a
//! select (`x == x ? x : NaN`) turn it into what Cranelift would have made.
//!
//! A local gets the kinds of every value written to it, found by passes
//! over the function until nothing changes (if five passes still add some,
//! every float local is treated as mixed, which is always sound). A local
//! written both arithmetic and exact values ("mixed") is canonicalized
//! where arithmetic values are written to it, so that an exact NaN stored
//! in it keeps its bits, as Wasm requires of loads, stores and locals.
//!
//! A function this analysis does not model (SIMD, exceptions, GC, float
//! block parameters on loops of several values…) is rewritten *eagerly*
//! instead: every arithmetic result is canonicalized where it is made, as
//! Cranelift does. Either way every value that can be observed has the bits
//! it has under Cranelift's canonicalization (the property test in
//! `tests.rs` beside this file compares the two on random programs).
//!
//! The work is linear in the module's size: at most five
//! analysing passes over each function, each one validating it, and one
//! or two that write it; a function that needs no check is copied as it is.

mod component;
pub(crate) use component::rewrite_component;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{Ieee32, Ieee64};
use wasmtime::wasmparser::{
    BlockType, CompositeInnerType, FuncToValidate, FuncType, FuncValidator, FuncValidatorAllocations, FunctionBody,
    Operator, Parser, Payload, ValType, ValidPayload, Validator, ValidatorResources, WasmFeatures, WasmModuleResources,
};

/// Analysis passes over a function before every float local is taken as
/// mixed (sound, with more checks).
const MAX_PASSES: usize = 4;

/// The canonical NaNs Cranelift makes: positive, quiet, no payload.
const F32_NAN: u32 = 0x7fc0_0000;
const F64_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The rewrite's version: raised with every change to what it writes, so
/// that compiled code cached from an older rewrite is not taken for this
/// one's (the cache of components is keyed on the bytes before the
/// rewrite, `runtime::cache::compile_prepared`).
pub(crate) const REWRITE_VERSION: u32 = 1;

/// What a rewrite did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// Functions whose observable floats are canonicalized where observed.
    pub lazy: usize,
    /// Functions canonicalized after every arithmetic result, as Cranelift does.
    pub eager: usize,
    /// Checks inserted in all.
    pub checks: usize,
}

/// `wasm` with every observable NaN canonical (see the module's doc), and
/// what was done. An error means the module is not valid Wasm: the caller
/// compiles it as it is, for the compiler to say why.
pub(crate) fn rewrite(wasm: &[u8]) -> Result<(Vec<u8>, Report), String> {
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut bodies = Vec::new();
    let mut report = Report::default();
    let mut allocations = FuncValidatorAllocations::default();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let ValidPayload::Func(func, body) = validator.payload(&payload).map_err(|e| e.to_string())? {
            let (code, allocs) = rewrite_function(wasm, func, &body, allocations, &mut report)?;
            allocations = allocs;
            bodies.push(code);
        }
        if let Payload::End(_) = payload {
            break;
        }
    }
    let mut module = wasm_encoder::Module::new();
    let mut encoder = Encoder { bodies: bodies.into_iter() };
    encoder.parse_core_module(&mut module, Parser::new(0), wasm).map_err(|e| e.to_string())?;
    Ok((module.finish(), report))
}

/// Validates `wasm` as the rewrite reads it (every proposal wasmparser
/// knows: what wasmtime does not support, it refuses when compiling).
pub(crate) fn validate(wasm: &[u8]) -> Result<(), String> {
    Validator::new_with_features(WasmFeatures::all()).validate_all(wasm).map(|_| ()).map_err(|e| e.to_string())
}

/// Re-encodes a module with its function bodies replaced.
struct Encoder {
    bodies: std::vec::IntoIter<Vec<u8>>,
}

impl Reencode for Encoder {
    type Error = String;

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        _func: FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<String>> {
        let body = self.bodies.next().ok_or(wasm_encoder::reencode::Error::UserError("a body too many".into()))?;
        code.raw(&body);
        Ok(())
    }
}

/// What may be in a float value (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Exact,
    Arith,
    ArithNeg,
}

impl Kind {
    /// Whether a NaN here may have bits Cranelift would not give it.
    fn unpinned(self) -> bool {
        matches!(self, Kind::Arith | Kind::ArithNeg)
    }

    /// The bit recording this kind in a local's set of kinds written.
    fn bit(self) -> u8 {
        match self {
            Kind::Plain => 0,
            Kind::Exact => 1,
            Kind::Arith => 2,
            Kind::ArithNeg => 4,
        }
    }

    fn neg(self) -> Kind {
        match self {
            Kind::Arith => Kind::ArithNeg,
            Kind::ArithNeg => Kind::Arith,
            other => other,
        }
    }

    fn abs(self) -> Kind {
        match self {
            Kind::ArithNeg => Kind::Arith,
            other => other,
        }
    }

    /// The kind of a value that is either `self` or `other`, if one kind
    /// describes both (`None`: they must be made canonical first).
    fn join(self, other: Kind) -> Option<Kind> {
        match (self, other) {
            (Kind::Plain, k) | (k, Kind::Plain) => Some(k),
            (a, b) if a == b => Some(a),
            _ => None,
        }
    }
}

/// A local's kind when read, from the set of kinds written to it.
fn read_kind(written: u8) -> Kind {
    match written {
        0 => Kind::Plain,
        1 => Kind::Exact,
        2 => Kind::Arith,
        4 => Kind::ArithNeg,
        // Mixed: arithmetic values are canonicalized as they are written.
        _ => Kind::Exact,
    }
}

fn mixed(written: u8) -> bool {
    written.count_ones() > 1
}

fn is_float(ty: ValType) -> bool {
    matches!(ty, ValType::F32 | ValType::F64)
}

/// Why a function is rewritten eagerly rather than analysed.
struct Unmodelled;

/// One function, rewritten: its body's bytes (locals included) and the
/// validator's allocations for the next.
fn rewrite_function(
    wasm: &[u8],
    func: FuncToValidate<ValidatorResources>,
    body: &FunctionBody<'_>,
    allocations: FuncValidatorAllocations,
    report: &mut Report,
) -> Result<(Vec<u8>, FuncValidatorAllocations), String> {
    let again = |allocations| {
        FuncToValidate { resources: func.resources.clone(), index: func.index, ty: func.ty, features: func.features }
            .into_validator(allocations)
    };
    let mut allocations = allocations;
    // The kinds written to each local: each pass reads the masks the one
    // before settled on and adds what it sees written, until nothing is
    // added (masks only grow, so this ends; after MAX_PASSES every float
    // local is taken as mixed, which is always sound).
    let mut settled: Option<Vec<u8>> = None;
    let mut lazy = true;
    for pass in 0..=MAX_PASSES {
        let mut analysis = Function::new(again(allocations), func.ty, body, settled.clone(), false)?;
        let outcome = analysis.run(body);
        allocations = analysis.validator.into_allocations();
        match outcome {
            Ok(()) => {
                let before = settled.clone().unwrap_or_else(|| analysis.initial.clone());
                let grown: Vec<u8> = before.iter().zip(&analysis.written).map(|(a, b)| a | b).collect();
                if settled.as_ref() == Some(&grown) {
                    break;
                }
                settled = Some(if pass == MAX_PASSES {
                    analysis.locals.iter().map(|t| if is_float(*t) { 7 } else { 0 }).collect()
                } else {
                    grown
                });
            }
            Err(Failure::Invalid(e)) => return Err(e),
            Err(Failure::Unmodelled) => {
                lazy = false;
                break;
            }
        }
    }
    let mut emit = Function::new(again(allocations), func.ty, body, settled.clone(), !lazy)?;
    // Temporaries must keep the function within the locals a validator
    // accepts (wasmparser's and wasmtime's limit).
    const MAX_LOCALS: usize = 50_000;
    let mut outcome = emit.run(body);
    // The final pass read the settled masks: it must have written nothing
    // they lack, or its reads were wrong. Never silently: eager instead.
    let consistent = |f: &Function| settled.as_ref().is_some_and(|m| f.written.iter().zip(m).all(|(w, m)| w & !m == 0));
    if lazy && (matches!(outcome, Err(Failure::Unmodelled)) || (outcome.is_ok() && !consistent(&emit))) {
        lazy = false;
        let allocations = emit.validator.into_allocations();
        emit = Function::new(again(allocations), func.ty, body, None, true)?;
        outcome = emit.run(body);
    }
    match outcome {
        Ok(()) => {}
        Err(Failure::Invalid(e)) => return Err(e),
        Err(Failure::Unmodelled) => return Err("eager NaN canonicalization met an unmodelled operator".into()),
    }
    if lazy {
        report.lazy += 1;
    } else {
        report.eager += 1;
    }
    if emit.locals.len() + emit.temps.len() > MAX_LOCALS {
        return Err(format!("function {} has too many locals to add the checks' own", func.index));
    }
    report.checks += emit.checks;
    let code = if emit.checks == 0 { wasm[body.range()].to_vec() } else { emit.finish(body)? };
    Ok((code, emit.validator.into_allocations()))
}

enum Failure {
    Invalid(String),
    Unmodelled,
}

impl From<wasmtime::wasmparser::BinaryReaderError> for Failure {
    fn from(e: wasmtime::wasmparser::BinaryReaderError) -> Self {
        Failure::Invalid(e.to_string())
    }
}

impl From<Unmodelled> for Failure {
    fn from(_: Unmodelled) -> Self {
        Failure::Unmodelled
    }
}

/// A label: the types a branch to it carries, and the stack below it.
struct Frame {
    /// Operand stack height under the frame's parameters.
    height: usize,
    /// What a branch to it carries (a loop's parameters, else the results).
    label: Vec<ValType>,
    results: Vec<ValType>,
    /// An `if`'s parameters' kinds, for its `else`.
    params: Vec<Kind>,
    unreachable: bool,
    /// Entered in dead code: its `else` is dead too.
    born_dead: bool,
}

/// One pass over a function: the analysis, and (on the last pass) the
/// rewritten code.
struct Function {
    validator: FuncValidator<ValidatorResources>,
    /// Every local's type, parameters first.
    locals: Vec<ValType>,
    /// Kinds written to each local in this pass.
    written: Vec<u8>,
    /// What a local holds before anything is written: its parameter
    /// (exact) or zero (plain).
    initial: Vec<u8>,
    /// The kinds locals are read as: settled by earlier passes.
    settled: Vec<u8>,
    eager: bool,
    stack: Vec<Kind>,
    frames: Vec<Frame>,
    /// The rewritten instructions (only kept when checks are inserted).
    code: Vec<u8>,
    checks: usize,
    /// Locals added for checks and spills, in order, and their index by
    /// (type, slot).
    temps: Vec<ValType>,
    temp_index: std::collections::HashMap<(ValType, usize), u32>,
    results: Vec<ValType>,
}

impl Function {
    fn new(
        mut validator: FuncValidator<ValidatorResources>,
        type_index: u32,
        body: &FunctionBody<'_>,
        settled: Option<Vec<u8>>,
        eager: bool,
    ) -> Result<Function, String> {
        let ty = func_type(validator.resources(), type_index).ok_or("a function without a type")?.clone();
        let mut locals: Vec<ValType> = ty.params().to_vec();
        let results = ty.results().to_vec();
        let mut reader = body.get_locals_reader().map_err(|e| e.to_string())?;
        for _ in 0..reader.get_count() {
            let offset = reader.original_position();
            let (count, ty) = reader.read().map_err(|e| e.to_string())?;
            validator.define_locals(offset, count, ty).map_err(|e| e.to_string())?;
            // Bounded by the validator, which refuses more than 50,000 locals.
            locals.extend(std::iter::repeat_n(ty, count as usize));
        }
        let params = ty.params().len();
        let initial: Vec<u8> = locals.iter().enumerate().map(|(i, t)| u8::from(i < params && is_float(*t))).collect();
        Ok(Function {
            validator,
            locals,
            written: initial.clone(),
            settled: settled.unwrap_or_else(|| initial.clone()),
            initial,
            eager,
            stack: Vec::new(),
            frames: vec![Frame {
                height: 0,
                label: results.clone(),
                results: results.clone(),
                params: Vec::new(),
                unreachable: false,
                born_dead: false,
            }],
            code: Vec::new(),
            checks: 0,
            temps: Vec::new(),
            temp_index: std::collections::HashMap::new(),
            results,
        })
    }

    fn run(&mut self, body: &FunctionBody<'_>) -> Result<(), Failure> {
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let start = reader.original_position();
            let (op, offset) = reader.read_with_offset()?;
            let end = reader.original_position();
            let bytes = &body.as_bytes()[start - body.range().start..end - body.range().start];
            if self.eager {
                self.eager_op(&op, offset, bytes)?;
            } else {
                self.lazy_op(&op, offset, bytes)?;
            }
        }
        if self.validator.control_stack_height() != 0 {
            return Err(Failure::Invalid("the function's code does not end".into()));
        }
        Ok(())
    }

    /// The rewritten body: the locals (with the temporaries) and the code.
    fn finish(&self, body: &FunctionBody<'_>) -> Result<Vec<u8>, String> {
        let mut groups = Vec::new();
        for local in body.get_locals_reader().map_err(|e| e.to_string())? {
            let (count, ty) = local.map_err(|e| e.to_string())?;
            groups.push((count, RoundtripReencoder.val_type(ty).map_err(|e| e.to_string())?));
        }
        for ty in &self.temps {
            groups.push((1, RoundtripReencoder.val_type(*ty).map_err(|e| e.to_string())?));
        }
        let mut function = wasm_encoder::Function::new(groups);
        function.raw(self.code.iter().copied());
        let mut bytes = Vec::new();
        wasm_encoder::Encode::encode(&function, &mut bytes);
        // `Function::encode` writes the body's length first; a code
        // section's raw entry is the body alone.
        let mut reader = wasmtime::wasmparser::BinaryReader::new(&bytes, 0);
        let len = reader.read_var_u32().map_err(|e| e.to_string())? as usize;
        Ok(bytes[reader.original_position()..][..len].to_vec())
    }

    fn validate(&mut self, op: &Operator<'_>, offset: usize) -> Result<(), Failure> {
        self.validator.op(offset, op)?;
        Ok(())
    }

    fn emit_original(&mut self, bytes: &[u8]) {
        self.code.extend_from_slice(bytes);
    }

    fn emit(&mut self, instruction: wasm_encoder::Instruction<'_>) {
        wasm_encoder::Encode::encode(&instruction, &mut self.code);
    }

    /// The index of temporary local `slot` of type `ty`.
    fn temp(&mut self, ty: ValType, slot: usize) -> u32 {
        let next = (self.locals.len() + self.temps.len()) as u32;
        let index = *self.temp_index.entry((ty, slot)).or_insert(next);
        if index == next {
            self.temps.push(ty);
        }
        index
    }

    /// Canonicalizes the float of type `ty` on top of the stack, as
    /// Cranelift would have made it: `x == x ? x : NaN` (the NaN negative
    /// for `ArithNeg`). Vector types get the same lane by lane.
    fn check(&mut self, ty: ValType, kind: Kind) {
        use wasm_encoder::Instruction as I;
        let negative = kind == Kind::ArithNeg;
        let (nan, eq) = match ty {
            ValType::F32 => (I::F32Const(Ieee32::new(F32_NAN | if negative { 1 << 31 } else { 0 })), I::F32Eq),
            ValType::F64 => (I::F64Const(Ieee64::new(F64_NAN | if negative { 1 << 63 } else { 0 })), I::F64Eq),
            // Only floats are ever unpinned; nothing else is checked.
            _ => return,
        };
        let t = self.temp(ty, 0);
        self.checks += 1;
        for instruction in [I::LocalTee(t), nan, I::LocalGet(t), I::LocalGet(t), eq, I::Select] {
            self.emit(instruction);
        }
    }

    /// Canonicalizes every lane of the f32x4 (`wide` false) or f64x2
    /// vector on top of the stack.
    fn check_vector(&mut self, wide: bool) {
        use wasm_encoder::Instruction as I;
        let t = self.temp(ValType::V128, 0);
        self.checks += 1;
        let lanes: i128 = if wide {
            (F64_NAN as i128) | ((F64_NAN as i128) << 64)
        } else {
            let lane = F32_NAN as i128;
            lane | (lane << 32) | (lane << 64) | (lane << 96)
        };
        self.emit(I::LocalTee(t));
        self.emit(I::V128Const(lanes));
        self.emit(I::LocalGet(t));
        self.emit(I::LocalGet(t));
        self.emit(if wide { I::F64x2Eq } else { I::F32x4Eq });
        self.emit(I::V128Bitselect);
    }

    /// Makes canonical every float among the top `depth + 1` operands whose
    /// position `needs` picks (0 = the top), spilling the ones above it to
    /// temporaries and back. Their kinds become `Exact`.
    fn pin(&mut self, within: usize, needs: impl Fn(usize) -> bool) -> Result<(), Failure> {
        let height = self.stack.len();
        let wanted: Vec<bool> =
            (0..within.min(height)).map(|d| self.stack[height - 1 - d].unpinned() && needs(d)).collect();
        let Some(deepest) = wanted.iter().rposition(|w| *w) else { return Ok(()) };
        let mut types = Vec::with_capacity(deepest + 1);
        for d in 0..=deepest {
            match self.validator.get_operand_type(d) {
                Some(Some(ty)) => types.push(ty),
                _ => return Err(Failure::Invalid("an operand without a type".into())),
            }
        }
        for (d, ty) in types.iter().enumerate() {
            let kind = self.stack[height - 1 - d];
            if wanted[d] {
                self.check(*ty, kind);
                self.stack[height - 1 - d] = Kind::Exact;
            }
            if d < deepest {
                let t = self.temp(*ty, d + 1);
                self.emit(wasm_encoder::Instruction::LocalSet(t));
            }
        }
        for d in (0..deepest).rev() {
            let t = self.temp(types[d], d + 1);
            self.emit(wasm_encoder::Instruction::LocalGet(t));
        }
        Ok(())
    }

    /// Pins the floats among the top `types.len()` operands, which have
    /// `types`, from `skip` places down.
    fn pin_values(&mut self, types: &[ValType], skip: usize) -> Result<(), Failure> {
        let n = types.len();
        let types = types.to_vec();
        self.pin(skip + n, move |d| d >= skip && is_float(types[n - 1 - (d - skip)]))
    }

    fn pop(&mut self, n: usize) -> Result<(), Failure> {
        let floor = self.frames.last().map_or(0, |f| f.height);
        if self.stack.len() < floor + n {
            return Err(Failure::Invalid("operand stack underflow".into()));
        }
        self.stack.truncate(self.stack.len() - n);
        Ok(())
    }

    fn push(&mut self, kind: Kind) {
        self.stack.push(kind);
    }

    /// An operator that takes `pops` operands and makes one value of `kind`.
    fn replace(&mut self, pops: usize, kind: Kind) -> Result<(), Failure> {
        self.pop(pops)?;
        self.push(kind);
        Ok(())
    }

    fn top(&self) -> Kind {
        self.stack.last().copied().unwrap_or(Kind::Plain)
    }

    fn label(&self, depth: u32) -> Result<Vec<ValType>, Failure> {
        let index =
            self.frames.len().checked_sub(1 + depth as usize).ok_or(Failure::Invalid("no such label".into()))?;
        Ok(self.frames[index].label.clone())
    }

    fn block_types(&self, ty: BlockType) -> Result<(Vec<ValType>, Vec<ValType>), Failure> {
        Ok(match ty {
            BlockType::Empty => (Vec::new(), Vec::new()),
            BlockType::Type(t) => (Vec::new(), vec![t]),
            BlockType::FuncType(index) => {
                let ty = func_type(self.validator.resources(), index).ok_or(Failure::Invalid("no such type".into()))?;
                (ty.params().to_vec(), ty.results().to_vec())
            }
        })
    }

    fn local_type(&self, index: u32) -> Result<ValType, Failure> {
        self.locals.get(index as usize).copied().ok_or(Failure::Invalid("no such local".into()))
    }

    fn local_kind(&self, index: u32) -> Kind {
        read_kind(self.settled[index as usize])
    }

    fn local_mixed(&self, index: u32) -> bool {
        mixed(self.settled[index as usize])
    }

    /// Writes the top value to local `index`: records its kind and, if the
    /// local is mixed, pins it.
    fn write_local(&mut self, index: u32) -> Result<(), Failure> {
        let ty = self.local_type(index)?;
        if !is_float(ty) {
            return Ok(());
        }
        let kind = self.top();
        self.written[index as usize] |= kind.bit();
        if self.local_mixed(index) && kind.unpinned() {
            self.pin(1, |_| true)?;
        }
        Ok(())
    }

    /// Enters a block, loop or if whose parameters are on the stack.
    fn enter(&mut self, ty: BlockType, is_loop: bool) -> Result<(), Failure> {
        let (params, results) = self.block_types(ty)?;
        // A loop's parameters meet the values its branches carry, and an
        // if's meet nothing on its implicit else: pin them on entry.
        self.pin_values(&params, 0)?;
        let height = self.stack.len().checked_sub(params.len()).ok_or(Failure::Invalid("underflow".into()))?;
        let kinds = self.stack[height..].to_vec();
        let label = if is_loop { params.clone() } else { results.clone() };
        self.frames.push(Frame { height, label, results, params: kinds, unreachable: false, born_dead: false });
        Ok(())
    }

    /// After an unconditional branch: the rest of the frame is dead code.
    fn dead(&mut self) {
        if let Some(frame) = self.frames.last_mut() {
            frame.unreachable = true;
            self.stack.truncate(frame.height);
        }
    }

    fn lazy_op(&mut self, op: &Operator<'_>, offset: usize, bytes: &[u8]) -> Result<(), Failure> {
        use Operator as O;
        let mut generic = None;
        let unreachable = self.frames.last().is_some_and(|f| f.unreachable);
        if unreachable {
            // Dead code runs never: copied as it is, until the frame ends.
            match op {
                O::Block { .. } | O::Loop { .. } | O::If { .. } => {
                    self.frames.push(Frame {
                        height: self.stack.len(),
                        label: Vec::new(),
                        results: Vec::new(),
                        params: Vec::new(),
                        unreachable: true,
                        born_dead: true,
                    });
                }
                O::Else => {
                    // The else of a reachable `if` whose then ended in a branch.
                    let frame = self.frames.last_mut().ok_or(Failure::Invalid("else without if".into()))?;
                    self.stack.truncate(frame.height);
                    if !frame.born_dead {
                        frame.unreachable = false;
                        self.stack.extend(frame.params.clone());
                    }
                }
                O::End => self.end_frame()?,
                _ => {}
            }
            self.emit_original(bytes);
            self.validate(op, offset)?;
            return self.in_step();
        }
        match op {
            O::F32Const { value } => {
                self.push(if f32::from_bits(value.bits()).is_nan() { Kind::Exact } else { Kind::Plain })
            }
            O::F64Const { value } => {
                self.push(if f64::from_bits(value.bits()).is_nan() { Kind::Exact } else { Kind::Plain })
            }
            O::F32Load { .. } | O::F64Load { .. } | O::F32ReinterpretI32 | O::F64ReinterpretI64 => {
                self.replace(1, Kind::Exact)?
            }
            O::F32ConvertI32S
            | O::F32ConvertI32U
            | O::F32ConvertI64S
            | O::F32ConvertI64U
            | O::F64ConvertI32S
            | O::F64ConvertI32U
            | O::F64ConvertI64S
            | O::F64ConvertI64U => self.replace(1, Kind::Plain)?,
            op if let Some(pops) = arithmetic(op) => self.replace(pops, Kind::Arith)?,
            O::F32Abs | O::F64Abs => self.replace(1, self.top().abs())?,
            O::F32Neg | O::F64Neg => self.replace(1, self.top().neg())?,
            O::F32Copysign | O::F64Copysign => {
                // The sign operand (top) always; the magnitude if it is
                // arithmetic (its NaN's payload would show).
                self.pin(2, |_| true)?;
                let height = self.stack.len();
                let magnitude = self.stack.get(height.wrapping_sub(2)).copied().unwrap_or(Kind::Plain);
                self.replace(2, magnitude)?;
            }
            O::F32Eq
            | O::F32Ne
            | O::F32Lt
            | O::F32Gt
            | O::F32Le
            | O::F32Ge
            | O::F64Eq
            | O::F64Ne
            | O::F64Lt
            | O::F64Gt
            | O::F64Le
            | O::F64Ge => self.replace(2, Kind::Plain)?,
            O::I32TruncF32S
            | O::I32TruncF32U
            | O::I32TruncF64S
            | O::I32TruncF64U
            | O::I64TruncF32S
            | O::I64TruncF32U
            | O::I64TruncF64S
            | O::I64TruncF64U
            | O::I32TruncSatF32S
            | O::I32TruncSatF32U
            | O::I32TruncSatF64S
            | O::I32TruncSatF64U
            | O::I64TruncSatF32S
            | O::I64TruncSatF32U
            | O::I64TruncSatF64S
            | O::I64TruncSatF64U => self.replace(1, Kind::Plain)?,
            O::F32Store { .. } | O::F64Store { .. } => {
                self.pin(1, |_| true)?;
                self.pop(2)?;
            }
            O::I32ReinterpretF32 | O::I64ReinterpretF64 => {
                self.pin(1, |_| true)?;
                self.replace(1, Kind::Plain)?;
            }
            O::LocalGet { local_index } => {
                let kind =
                    if is_float(self.local_type(*local_index)?) { self.local_kind(*local_index) } else { Kind::Plain };
                self.push(kind);
            }
            O::LocalSet { local_index } => {
                self.write_local(*local_index)?;
                self.pop(1)?;
            }
            O::LocalTee { local_index } => {
                self.write_local(*local_index)?;
            }
            O::GlobalGet { global_index } => {
                let float =
                    self.validator.resources().global_at(*global_index).is_some_and(|g| is_float(g.content_type));
                self.push(if float { Kind::Exact } else { Kind::Plain });
            }
            O::GlobalSet { .. } => {
                self.pin(1, |_| true)?;
                self.pop(1)?;
            }
            O::Drop => self.pop(1)?,
            O::Select | O::TypedSelect { .. } => {
                let height = self.stack.len();
                if height < 3 {
                    return Err(Failure::Invalid("select needs three operands".into()));
                }
                let (a, b) = (self.stack[height - 3], self.stack[height - 2]);
                let kind = match a.join(b) {
                    Some(kind) => kind,
                    None => {
                        self.pin(3, |d| d >= 1)?;
                        Kind::Exact
                    }
                };
                self.replace(3, kind)?;
            }
            O::Call { function_index } | O::ReturnCall { function_index } => {
                let index = self
                    .validator
                    .resources()
                    .type_index_of_function(*function_index)
                    .ok_or(Failure::Invalid("no such function".into()))?;
                self.call(index, 0, matches!(op, O::ReturnCall { .. }))?;
            }
            O::CallIndirect { type_index, .. } | O::ReturnCallIndirect { type_index, .. } => {
                self.call(*type_index, 1, matches!(op, O::ReturnCallIndirect { .. }))?;
            }
            O::Return => {
                let results = self.results.clone();
                self.pin_values(&results, 0)?;
            }
            O::Br { relative_depth } => {
                let label = self.label(*relative_depth)?;
                self.pin_values(&label, 0)?;
            }
            O::BrIf { relative_depth } => {
                let label = self.label(*relative_depth)?;
                self.pin_values(&label, 1)?;
                self.pop(1)?;
            }
            O::BrTable { targets } => {
                let label = self.label(targets.default())?;
                self.pin_values(&label, 1)?;
            }
            O::Block { blockty } | O::If { blockty } => {
                if matches!(op, O::If { .. }) {
                    self.pop(1)?;
                }
                self.enter(*blockty, false)?;
            }
            O::Loop { blockty } => self.enter(*blockty, true)?,
            O::Else => {
                let results = self.frames.last().map(|f| f.results.clone()).unwrap_or_default();
                self.pin_values(&results, 0)?;
                let frame = self.frames.last_mut().ok_or(Failure::Invalid("else without if".into()))?;
                self.stack.truncate(frame.height);
                self.stack.extend(frame.params.clone());
            }
            O::End => {
                let results = self.frames.last().map(|f| f.results.clone()).unwrap_or_default();
                self.pin_values(&results, 0)?;
                self.end_frame()?;
            }
            O::Unreachable | O::Nop => {}
            O::Try { .. }
            | O::TryTable { .. }
            | O::Catch { .. }
            | O::CatchAll
            | O::Delegate { .. }
            | O::Throw { .. }
            | O::ThrowRef
            | O::Rethrow { .. }
            | O::BrOnNull { .. }
            | O::BrOnNonNull { .. }
            | O::BrOnCast { .. }
            | O::BrOnCastFail { .. }
            | O::CallRef { .. }
            | O::ReturnCallRef { .. } => return Err(Unmodelled.into()),
            _ => generic = Some(self.other(op)?),
        }
        self.emit_original(bytes);
        self.validate(op, offset)?;
        if let Some(pushes) = generic
            && (0..pushes).any(|d| touches_floats(self.validator.get_operand_type(d)))
        {
            return Err(Unmodelled.into());
        }
        if matches!(
            op,
            O::Unreachable
                | O::Return
                | O::Br { .. }
                | O::BrTable { .. }
                | O::ReturnCall { .. }
                | O::ReturnCallIndirect { .. }
        ) {
            self.dead();
        }
        self.in_step()
    }

    /// Whether this pass still agrees with the validator on the operand
    /// stack's height and the frames: an operator it does not model that
    /// moves either makes the function eager.
    fn in_step(&self) -> Result<(), Failure> {
        let dead = self.frames.last().is_some_and(|f| f.unreachable);
        let height_agrees = dead || self.stack.len() == self.validator.operand_stack_height() as usize;
        if height_agrees && self.frames.len() == self.validator.control_stack_height() as usize {
            Ok(())
        } else {
            Err(Unmodelled.into())
        }
    }

    /// A call: pins float arguments (under `skip` operands such as a table
    /// index); its results are exact.
    fn call(&mut self, type_index: u32, skip: usize, tail: bool) -> Result<(), Failure> {
        let ty = func_type(self.validator.resources(), type_index).ok_or(Failure::Invalid("no such type".into()))?;
        let (params, results) = (ty.params().to_vec(), ty.results().to_vec());
        self.pin_values(&params, skip)?;
        self.pop(params.len() + skip)?;
        if !tail {
            for result in results {
                self.push(if is_float(result) { Kind::Exact } else { Kind::Plain });
            }
        }
        Ok(())
    }

    /// Leaves the innermost frame: its results are on the stack, pinned.
    fn end_frame(&mut self) -> Result<(), Failure> {
        let frame = self.frames.pop().ok_or(Failure::Invalid("end without a frame".into()))?;
        self.stack.truncate(frame.height);
        for ty in &frame.results {
            self.stack.push(if is_float(*ty) { Kind::Exact } else { Kind::Plain });
        }
        Ok(())
    }

    /// Any other operator: fine as long as it takes and makes no float
    /// and no vector (whose lanes could be floats).
    /// Returns how many values it pushes, for the caller to check their
    /// types once the validator has applied it.
    fn other(&mut self, op: &Operator<'_>) -> Result<usize, Failure> {
        let (pops, pushes) = op.operator_arity(&self.validator).ok_or(Unmodelled)?;
        if (0..pops as usize).any(|d| touches_floats(self.validator.get_operand_type(d))) {
            return Err(Unmodelled.into());
        }
        self.pop(pops as usize)?;
        for _ in 0..pushes {
            self.push(Kind::Plain);
        }
        Ok(pushes as usize)
    }

    /// Eager rewriting: the operator as it is, then a check of its result
    /// if it is float arithmetic.
    fn eager_op(&mut self, op: &Operator<'_>, offset: usize, bytes: &[u8]) -> Result<(), Failure> {
        self.emit_original(bytes);
        self.validate(op, offset)?;
        if arithmetic(op).is_some() {
            let ty = match self.validator.get_operand_type(0) {
                Some(Some(ty)) => ty,
                _ => return Err(Failure::Invalid("an arithmetic result without a type".into())),
            };
            self.check(ty, Kind::Arith);
        } else if let Some(wide) = vector_arithmetic(op) {
            self.check_vector(wide);
        }
        Ok(())
    }
}

/// Whether an operand is a float, or a vector whose lanes may be.
fn touches_floats(ty: Option<Option<ValType>>) -> bool {
    matches!(ty, Some(Some(ValType::F32 | ValType::F64 | ValType::V128)))
}

fn func_type(resources: &ValidatorResources, index: u32) -> Option<&FuncType> {
    match &resources.sub_type_at(index)?.composite_type.inner {
        CompositeInnerType::Func(ty) => Some(ty),
        _ => None,
    }
}

/// Scalar float arithmetic, whose NaN results Cranelift canonicalizes
/// (`cranelift-codegen`'s `nan_canonicalization.rs`): how many operands.
fn arithmetic(op: &Operator<'_>) -> Option<usize> {
    use Operator as O;
    match op {
        O::F32Add
        | O::F32Sub
        | O::F32Mul
        | O::F32Div
        | O::F32Min
        | O::F32Max
        | O::F64Add
        | O::F64Sub
        | O::F64Mul
        | O::F64Div
        | O::F64Min
        | O::F64Max => Some(2),
        O::F32Sqrt
        | O::F32Ceil
        | O::F32Floor
        | O::F32Trunc
        | O::F32Nearest
        | O::F64Sqrt
        | O::F64Ceil
        | O::F64Floor
        | O::F64Trunc
        | O::F64Nearest
        | O::F32DemoteF64
        | O::F64PromoteF32 => Some(1),
        _ => None,
    }
}

/// Vector float arithmetic Cranelift canonicalizes: `Some(true)` for
/// f64x2 results, `Some(false)` for f32x4.
fn vector_arithmetic(op: &Operator<'_>) -> Option<bool> {
    use Operator as O;
    match op {
        O::F32x4Add
        | O::F32x4Sub
        | O::F32x4Mul
        | O::F32x4Div
        | O::F32x4Min
        | O::F32x4Max
        | O::F32x4Sqrt
        | O::F32x4Ceil
        | O::F32x4Floor
        | O::F32x4Trunc
        | O::F32x4Nearest
        | O::F32x4DemoteF64x2Zero
        | O::F32x4RelaxedMadd
        | O::F32x4RelaxedNmadd
        | O::F32x4RelaxedMin
        | O::F32x4RelaxedMax => Some(false),
        O::F64x2Add
        | O::F64x2Sub
        | O::F64x2Mul
        | O::F64x2Div
        | O::F64x2Min
        | O::F64x2Max
        | O::F64x2Sqrt
        | O::F64x2Ceil
        | O::F64x2Floor
        | O::F64x2Trunc
        | O::F64x2Nearest
        | O::F64x2PromoteLowF32x4
        | O::F64x2RelaxedMadd
        | O::F64x2RelaxedNmadd
        | O::F64x2RelaxedMin
        | O::F64x2RelaxedMax => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

/// Fuzzing entry (`fuzz/fuzz_targets/nan_rewrite.rs`): any bytes either
/// fail to rewrite or, if they are a valid module, become a valid module.
#[doc(hidden)]
pub fn rewrite_for_fuzzing(wasm: &[u8]) {
    if let Ok((rewritten, _)) = rewrite(wasm)
        && let Err(e) = validate(&rewritten)
    {
        panic!("a valid module was rewritten into an invalid one: {e}");
    }
}
