//! The host half of the ABI: instantiating the module and calling one task
//! in an instance, with every pointer the guest hands back checked and every
//! sandbox limit applied (see [`crate::sandbox`]).

use crate::error::LimitExceeded;
use crate::error::{LoadStep, TaskFailure};
use crate::runtime::cuts::{MAX_FRAME_NAME, MAX_MESSAGE, MAX_PANIC_FILE, cap, capped, prefix};
use crate::runtime::fresh_state::{self, InitialImage, NotRestored, ResetPlan, Snapshot};
use crate::runtime::outbox::{Outbox, Sent};
use crate::runtime::store_core::{self, StoreCore, WithCore};
use crate::sandbox::interrupt::{RunLimits, TickGuard, Ticker, Watch};
use crate::sandbox::limiter::GuestLimiter;
use crate::sandbox::limits::Limits;
use crate::sandbox::wasi::{self, TaskOutput, TaskWasi, WasiConfig, WasiHost};
use crate::seed::TaskRandom;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wasmpool_abi as abi;
use wasmtime::{
    Caller, Engine, Instance, InstancePre, Linker, Memory, Store, Trap, TypedFunc, Val, WasmBacktrace, WasmCoreDump,
};

/// What the host keeps per instance: the store core every code kind has,
/// and what a core module adds.
pub(crate) struct HostState {
    core: StoreCore,
    /// Set by `wasmpool.panic` just before the guest traps.
    panic: Option<ReportedPanic>,
    /// WASI context and captured output, when the pool enables WASI.
    wasi: Option<TaskWasi>,
    /// The running task's seed, and WASI's random stream drawn from it.
    random: TaskRandom,
}

impl WithCore for HostState {
    fn core(&self) -> &StoreCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut StoreCore {
        &mut self.core
    }
}

impl WasiHost for HostState {
    fn wasi(&mut self) -> &mut TaskWasi {
        self.wasi.as_mut().expect("every store of a WASI pool has a WASI context")
    }

    fn random(&mut self) -> &mut TaskRandom {
        &mut self.random
    }

    fn watch(&self) -> &Watch {
        &self.core.watch
    }
}

struct ReportedPanic {
    message: String,
    location: String,
}

/// How instances are set up: the sandbox limits and capabilities, the same
/// in thread workers and worker processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceConfig {
    pub limits: Limits,
    /// Whether the engine checks epochs (deadlines and cancellation in code).
    /// (Fuel is metered exactly when `limits.fuel` is set.)
    pub epoch_checks: bool,
    pub wasi: Option<WasiConfig>,
    /// The module's `__stack_pointer` (see `TaskModule::stack_pointer`).
    pub stack_pointer: Option<u32>,
    /// How to reset an instance between tasks, if instances are reset in
    /// place ([`crate::runtime::fresh_state`]).
    pub reset: Option<ResetPlan>,
    /// For a task component: whether one instance is reset in place
    /// between inputs (`runtime::fresh_state::whole_store`).
    pub component_reset: bool,
    /// For a task component: its start argument (`runtime::component_start`).
    pub component_start: Option<String>,
}

/// One task's result and whatever it wrote (WASI tasks only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub result: Result<Vec<u8>, TaskFailure>,
    pub output: TaskOutput,
}

impl Outcome {
    /// An outcome with no output.
    pub(crate) fn bare(result: Result<Vec<u8>, TaskFailure>) -> Self {
        Outcome { result, output: TaskOutput::default() }
    }
}

/// Everything needed to create instances of one module, shared by workers.
#[derive(Clone)]
pub(crate) struct Instantiator {
    engine: Engine,
    pre: InstancePre<HostState>,
    config: Arc<InstanceConfig>,
    /// Thread workers with epoch checks: bumps the epoch while tasks run.
    ticker: Option<Arc<Ticker>>,
    /// The memory's initial image, if instances are reset in place.
    image: Option<Arc<InitialImage>>,
    /// The size of the map in which the module's writes mark their pages,
    /// if it was prepared so (`fresh_state`): a memory of the host's, beside
    /// the module's.
    map: Option<usize>,
}

impl Instantiator {
    /// Links the module against the SDK's host functions (and WASI, if
    /// enabled).
    pub(crate) fn new(
        engine: &Engine,
        module: &wasmtime::Module,
        config: InstanceConfig,
        ticker: Option<Arc<Ticker>>,
    ) -> Result<Self, String> {
        let mut linker = Linker::new(engine);
        linker.func_wrap(abi::HOST_MODULE, abi::PANIC_IMPORT, record_panic).map_err(|e| format!("{e:#}"))?;
        linker
            .func_wrap(abi::HOST_MODULE, abi::TASK_SEED_IMPORT, |caller: Caller<'_, HostState>| -> u64 {
                caller.data().random.seed()
            })
            .map_err(|e| format!("{e:#}"))?;
        let max_message = config.limits.max_message;
        linker
            .func_wrap(abi::HOST_MODULE, abi::SEND_IMPORT, move |caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                send_message(caller, ptr, len, max_message)
            })
            .map_err(|e| format!("{e:#}"))?;
        linker.func_wrap(abi::HOST_MODULE, abi::PROGRESS_IMPORT, report_progress).map_err(|e| format!("{e:#}"))?;
        if let Some(wasi) = &config.wasi {
            wasi::add_to_linker(&mut linker, wasi).map_err(|e| format!("{e:#}"))?;
        }
        let pre = linker.instantiate_pre(module).map_err(|e| format!("{e:#}"))?;
        let image = config.reset.as_ref().map(|plan| Arc::new(InitialImage::new(plan)));
        let map = module
            .get_export(fresh_state::MAP_EXPORT)
            .is_some()
            .then(|| fresh_state::map_pages(config.limits.max_memory as u64) as usize * fresh_state::WASM_PAGE);
        Ok(Instantiator { engine: engine.clone(), pre, config: Arc::new(config), ticker, image, map })
    }

    /// The memory image instances are reset to, if they are reset in place.
    pub(crate) fn image(&self) -> Option<&Arc<InitialImage>> {
        self.image.as_ref()
    }

    /// Keeps the epoch ticking while a task with a deadline or a cancel flag
    /// runs (thread workers only).
    pub(crate) fn tick_guard(&self, run: &RunLimits) -> Option<TickGuard> {
        self.ticker.as_ref().filter(|_| run.is_watched()).map(|ticker| ticker.enter())
    }

    /// A fresh instance: the module's initial state, nothing else. Its
    /// start function already runs under `run`'s limits.
    pub(crate) fn instantiate(&self, run: &RunLimits) -> Result<GuestInstance, TaskFailure> {
        self.instantiate_reporting(run, &mut |_| {}).map_err(|(_, failure)| failure)
    }

    /// Like [`instantiate`](Self::instantiate), telling `entering` before
    /// each step that runs guest code, and naming the step that failed.
    pub(crate) fn instantiate_reporting(
        &self,
        run: &RunLimits,
        entering: &mut dyn FnMut(&LoadStep),
    ) -> Result<GuestInstance, (LoadStep, TaskFailure)> {
        let at_start = |failure| (LoadStep::StartFunction, failure);
        let limits = &self.config.limits;
        let wasi = match &self.config.wasi {
            Some(config) => Some(config.context(limits.max_output).map_err(|e| at_start(TaskFailure::Instantiate(e)))?),
            None => None,
        };
        let state = HostState {
            core: StoreCore::new(GuestLimiter::new(limits.max_memory, limits.max_table_elements, self.map)),
            panic: None,
            wasi,
            random: TaskRandom::default(),
        };
        let mut store = StoreCore::store(&self.engine, state, self.config.epoch_checks);
        arm(&mut store, &self.config, run).map_err(at_start)?;
        entering(&LoadStep::StartFunction);
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            at_start(classify(&mut store, &self.config, e, |e| TaskFailure::Instantiate(capped(format!("{e:#}")))))
        })?;
        // A WASI "reactor" module sets itself up (constructors, the C
        // library's state) in `_initialize`, which the host must call first.
        if self.config.wasi.is_some()
            && let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize")
        {
            entering(&LoadStep::Initialize);
            initialize
                .call(&mut store, ())
                .map_err(|e| (LoadStep::Initialize, classify(&mut store, &self.config, e, trap_failure)))?;
        }
        let memory = instance
            .get_memory(&mut store, abi::MEMORY_EXPORT)
            .ok_or_else(|| at_start(TaskFailure::Instantiate("the instance has no memory export".into())))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, abi::ALLOC_EXPORT)
            .map_err(|e| at_start(TaskFailure::Instantiate(format!("{e:#}"))))?;
        let marks = self.config.reset.as_ref().and_then(|plan| fresh_state::marks_of(&mut store, &instance, plan));
        Ok(GuestInstance { store, instance, memory, alloc, marks, config: self.config.clone() })
    }
}

/// Sets up the store for a task starting now: its deadline, cancel flag
/// and fuel.
fn arm(store: &mut Store<HostState>, config: &InstanceConfig, run: &RunLimits) -> Result<(), TaskFailure> {
    let state = store.data_mut();
    // What an earlier task of a kept instance left behind (a panic report,
    // output) must not be blamed on this one.
    state.panic = None;
    if let Some(wasi) = &mut state.wasi {
        wasi.take_output();
    }
    StoreCore::arm(store, config.epoch_checks, config.limits.fuel, run)
}

/// One live instance of the module.
pub(crate) struct GuestInstance {
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    /// Where the module's writes mark their pages, if they do: the host
    /// marks what it writes too.
    marks: Option<Memory>,
    config: Arc<InstanceConfig>,
}

impl GuestInstance {
    /// Prepares a kept instance for its next task, under `run`'s limits.
    pub(crate) fn rearm(&mut self, run: &RunLimits) -> Result<(), TaskFailure> {
        arm(&mut self.store, &self.config, run)
    }

    /// What the current task has written (WASI only), leaving the pipes
    /// empty for the next task.
    pub(crate) fn take_output(&mut self) -> TaskOutput {
        self.store.data_mut().wasi.as_mut().map(TaskWasi::take_output).unwrap_or_default()
    }

    /// A snapshot of this instance's state, to return to with
    /// [`restore`](Self::restore) after each task; `None` if instances are
    /// not reset in place (or this system cannot scan for dirty pages).
    pub(crate) fn snapshot(&mut self, image: Option<&Arc<InitialImage>>) -> Result<Option<Snapshot>, NotRestored> {
        let (Some(plan), Some(image)) = (&self.config.reset, image) else { return Ok(None) };
        Snapshot::take(&mut self.store, &self.instance, self.memory, plan, image.clone())
    }

    /// Puts the instance back in the state `snapshot` holds, with a new WASI
    /// context (its descriptors as a new instance has them).
    pub(crate) fn restore(&mut self, snapshot: &mut Snapshot) -> Result<(), NotRestored> {
        snapshot.restore(&mut self.store, self.memory)?;
        if let Some(config) = &self.config.wasi {
            let context = config.context(self.config.limits.max_output).map_err(NotRestored)?;
            self.store.data_mut().wasi = Some(context);
        }
        Ok(())
    }

    /// The ABI version the module reports.
    pub(crate) fn abi_version(&mut self) -> Result<u32, TaskFailure> {
        let f = self
            .instance
            .get_typed_func::<(), i32>(&mut self.store, abi::ABI_VERSION_EXPORT)
            .map_err(|e| TaskFailure::Abi(format!("{e:#}")))?;
        let version = f.call(&mut self.store, ()).map_err(|e| self.failure(e))?;
        Ok(version as u32)
    }

    /// Calls the task exported as `export` with postcard-encoded `args`, the
    /// task's `seed` and its `outbox` (where what it sends goes), and
    /// returns the postcard-encoded result.
    pub(crate) fn call(
        &mut self,
        export: &str,
        args: &[u8],
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
    ) -> Result<Vec<u8>, TaskFailure> {
        self.store.data_mut().core.outbox = outbox;
        let result = self.call_task(export, args, seed);
        self.store.data_mut().core.outbox = None;
        result
    }

    fn call_task(&mut self, export: &str, args: &[u8], seed: u64) -> Result<Vec<u8>, TaskFailure> {
        let len = i32::try_from(args.len())
            .map_err(|_| TaskFailure::EncodeArguments(format!("{} bytes of arguments exceed 2 GiB", args.len())))?;
        let task = self
            .instance
            .get_typed_func::<(i32, i32), i32>(&mut self.store, export)
            .map_err(|e| TaskFailure::Abi(format!("{e:#}")))?;

        let ptr = self.alloc.call(&mut self.store, len).map_err(|e| self.failure(e))?;
        if ptr == 0 && len > 0 {
            return Err(TaskFailure::Abi(format!("wasmpool_alloc({len}) returned null (guest out of memory?)")));
        }
        let start = ptr as u32 as usize;
        let dest =
            self.memory.data_mut(&mut self.store).get_mut(start..start.saturating_add(args.len())).ok_or_else(
                || TaskFailure::Abi(format!("wasmpool_alloc({len}) returned {start:#x}, outside memory")),
            )?;
        dest.copy_from_slice(args);
        if let Some(map) = self.marks {
            fresh_state::mark_written(&mut self.store, map, start, args.len());
        }
        self.store.data_mut().random.start(seed);

        let header_ptr = task.call(&mut self.store, (ptr, len)).map_err(|e| self.failure(e))?;
        let header = self.read_header(header_ptr as u32 as usize)?;
        let (payload_ptr, payload_len) = (header.payload_ptr as usize, header.payload_len as usize);
        match header.status {
            abi::status::OK => {
                if let Some(limit) = LimitExceeded::output_over("result", payload_len, self.config.limits.max_output) {
                    return Err(TaskFailure::Limit(limit));
                }
                Ok(self.read(payload_ptr, payload_len, "the result payload")?.to_vec())
            }
            abi::status::TASK_ERROR => Err(TaskFailure::Failed(self.message(payload_ptr, payload_len)?)),
            abi::status::BAD_ARGUMENTS => Err(TaskFailure::BadArguments(self.message(payload_ptr, payload_len)?)),
            other => Err(TaskFailure::Abi(format!("unknown result status {other}"))),
        }
    }

    fn failure(&mut self, error: wasmtime::Error) -> TaskFailure {
        classify(&mut self.store, &self.config, error, trap_failure)
    }

    fn read_header(&self, ptr: usize) -> Result<abi::ResultHeader, TaskFailure> {
        let bytes = self.read(ptr, abi::RESULT_HEADER_LEN, "the result header")?;
        let mut header = [0u8; abi::RESULT_HEADER_LEN];
        header.copy_from_slice(bytes);
        Ok(abi::ResultHeader::from_bytes(header))
    }

    /// An error message the guest returned, cut to [`MAX_MESSAGE`] bytes.
    fn message(&self, ptr: usize, len: usize) -> Result<String, TaskFailure> {
        self.read(ptr, len, "the error message")?;
        let kept = self.read(ptr, len.min(MAX_MESSAGE), "the error message")?;
        let mut text = String::from_utf8_lossy(kept).into_owned();
        if len > MAX_MESSAGE {
            text.push_str(&format!(" … ({} more bytes cut)", len - MAX_MESSAGE));
        }
        Ok(text)
    }

    /// `len` bytes of guest memory at `ptr`, or an ABI error naming `what`.
    fn read(&self, ptr: usize, len: usize, what: &str) -> Result<&[u8], TaskFailure> {
        let memory = self.memory.data(&self.store);
        ptr.checked_add(len).and_then(|end| memory.get(ptr..end)).ok_or_else(|| {
            TaskFailure::Abi(format!(
                "{what} ({len} bytes at {ptr:#x}) lies outside guest memory ({} bytes)",
                memory.len()
            ))
        })
    }
}

/// The `wasmpool.panic` host function: keeps the message and location for
/// the trap that follows.
fn record_panic(
    mut caller: Caller<'_, HostState>,
    msg_ptr: i32,
    msg_len: i32,
    file_ptr: i32,
    file_len: i32,
    line: i32,
    column: i32,
) {
    let text = |caller: &mut Caller<'_, HostState>, ptr: i32, len: i32, cap: usize| -> String {
        let Some(memory) = caller.get_export(abi::MEMORY_EXPORT).and_then(|e| e.into_memory()) else {
            return "<no memory>".into();
        };
        let data = memory.data(&*caller);
        let (ptr, len) = (ptr as u32 as usize, (len as u32 as usize).min(cap));
        match ptr.checked_add(len).and_then(|end| data.get(ptr..end)) {
            Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            None => "<unreadable>".into(),
        }
    };
    let message = text(&mut caller, msg_ptr, msg_len, MAX_MESSAGE);
    let file = text(&mut caller, file_ptr, file_len, MAX_PANIC_FILE);
    let location = format!("{file}:{}:{}", line as u32, column as u32);
    // A guest that panics while reporting a panic keeps its first report.
    caller.data_mut().panic.get_or_insert(ReportedPanic { message, location });
}

/// The `wasmpool.send` host function: hands one message of the running
/// task to its outbox, waiting for room if the listener is behind. Returns
/// [`abi::send_status`]; a message over `max_message` bytes stops the task.
fn send_message(mut caller: Caller<'_, HostState>, ptr: i32, len: i32, max_message: usize) -> wasmtime::Result<i32> {
    let len = len as u32 as usize;
    if let Some(limit) = LimitExceeded::output_over("message", len, max_message) {
        return Err(wasmtime::Error::new(limit));
    }
    if caller.data().core.outbox.is_none() {
        return Ok(abi::send_status::NOBODY_LISTENS);
    }
    let Some(memory) = caller.get_export(abi::MEMORY_EXPORT).and_then(|e| e.into_memory()) else {
        return Err(wasmtime::Error::new(AbiViolation("the module has no memory export".into())));
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let start = ptr as u32 as usize;
    let Some(bytes) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
        return Err(wasmtime::Error::new(AbiViolation(format!(
            "a message ({len} bytes at {start:#x}) lies outside guest memory ({} bytes)",
            data.len()
        ))));
    };
    deliver(state, Sent::Message(bytes.to_vec()))
}

/// The `wasmpool.progress` host function: `done` of `total`, to the
/// call's progress listeners.
fn report_progress(mut caller: Caller<'_, HostState>, done: i64, total: i64) -> wasmtime::Result<()> {
    deliver(caller.data_mut(), Sent::Progress { done: done as u64, total: total as u64 }).map(|_| ())
}

fn deliver(state: &mut HostState, sent: Sent) -> wasmtime::Result<i32> {
    Ok(match state.core.deliver(sent)? {
        true => abi::send_status::DELIVERED,
        false => abi::send_status::NOBODY_LISTENS,
    })
}

/// A guest broke the ABI inside a host function.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AbiViolation(String);

/// Turns a failed call into a [`TaskFailure`], most specific first: the
/// sandbox stopping it (deadline, cancel, fuel, stack, output), a panic the
/// guest reported, a memory or table growth the sandbox refused, then the
/// trap itself (or `otherwise`, for errors that are not traps).
fn classify(
    store: &mut Store<HostState>,
    config: &InstanceConfig,
    error: wasmtime::Error,
    otherwise: fn(wasmtime::Error) -> TaskFailure,
) -> TaskFailure {
    let state = store.data_mut();
    let panic = state.panic.take();
    let refusal = state.core.limiter.take_refusal();
    if let Some(failure) = store_core::stopped_by_host(&error) {
        return failure;
    }
    if let Some(AbiViolation(reason)) = error.downcast_ref::<AbiViolation>() {
        return TaskFailure::Abi(reason.clone());
    }
    if let Some(overflow) = state.wasi.as_ref().and_then(TaskWasi::overflow) {
        return TaskFailure::Limit(overflow);
    }
    if let Some(limit) = wasi::handles_exceeded(&error) {
        return TaskFailure::Limit(limit);
    }
    if let Some(failure) = store_core::engine_limit(&error, &state.core, &config.limits) {
        return failure;
    }
    if let Some(Trap::MemoryOutOfBounds) = error.downcast_ref::<Trap>()
        && linear_stack_overflowed(store, config, &error)
    {
        return TaskFailure::Limit(LimitExceeded::LinearStack);
    }
    let failure = if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        TaskFailure::Failed(format!("the task called exit({})", exit.0))
    } else if let Some(panic) = panic {
        TaskFailure::Panic { message: panic.message, location: panic.location }
    } else if let Some(limit) = refusal {
        return TaskFailure::Limit(limit);
    } else if error.is::<Trap>() {
        trap_failure(error)
    } else {
        otherwise(error)
    };
    // A task refused a clock fails on the refusal, as Rust's `std` panics
    // on it: the capability is the cause worth naming.
    match store.data().wasi.as_ref().and_then(TaskWasi::refused) {
        Some(capability) => TaskFailure::NotGranted { capability, failure: Box::new(failure) },
        None => failure,
    }
}

/// Whether an out-of-bounds access happened because the stack the guest
/// keeps in linear memory ran out: its stack pointer (read from the trap's
/// core dump) then points below 0, which wraps past the end of memory.
fn linear_stack_overflowed(store: &mut Store<HostState>, config: &InstanceConfig, error: &wasmtime::Error) -> bool {
    let (Some(index), Some(dump)) = (config.stack_pointer, error.downcast_ref::<WasmCoreDump>()) else {
        return false;
    };
    let Some(global) = dump.globals().get(index as usize) else { return false };
    let Some(memory) = dump.memories().first() else { return false };
    match global.get(&mut *store) {
        Val::I32(sp) => (sp as u32 as usize) > memory.data_size(&*store),
        _ => false,
    }
}

/// `error`'s messages, outermost first, without the core dump and the
/// backtrace wasmtime wraps around an error raised inside guest code (the
/// backtrace is the failure's frames; the dump, pages of addresses).
pub(crate) fn error_text(error: &wasmtime::Error) -> String {
    // wasmtime adds them as the outermost contexts of the error raised.
    let wrappers = usize::from(error.downcast_ref::<WasmCoreDump>().is_some())
        + usize::from(error.downcast_ref::<WasmBacktrace>().is_some());
    let parts: Vec<String> = error.chain().skip(wrappers).map(ToString::to_string).collect();
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}

/// A trap with its kind and Wasm backtrace.
pub(crate) fn trap_failure(error: wasmtime::Error) -> TaskFailure {
    let frames = error
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .map(|frame| match frame.func_name() {
                    // Demangling a name is linear in its length: cut it first.
                    Some(name) => {
                        cap(format!("{:#}", rustc_demangle::demangle(prefix(name, 4 * MAX_FRAME_NAME))), MAX_FRAME_NAME)
                    }
                    None => format!("<wasm function {}>", frame.func_index()),
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => capped(error_text(&error)),
    };
    TaskFailure::Trap { kind, frames }
}
