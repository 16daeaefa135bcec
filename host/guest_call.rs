//! The host half of the ABI: instantiating the module and calling one task
//! in an instance, with every pointer the guest hands back checked.

use crate::error::TaskFailure;
use wasmpool_abi as abi;
use wasmtime::{
    Caller, Engine, Instance, InstancePre, Linker, Memory, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc,
    WasmBacktrace,
};

/// Longest panic message kept, in bytes; the rest is cut off.
const MAX_PANIC_MESSAGE: usize = 64 * 1024;
/// Longest panic file name kept, in bytes.
const MAX_PANIC_FILE: usize = 4 * 1024;

/// What the host keeps per instance.
pub(crate) struct HostState {
    limits: StoreLimits,
    /// Set by `wasmpool.panic` just before the guest traps.
    panic: Option<ReportedPanic>,
}

struct ReportedPanic {
    message: String,
    location: String,
}

/// Memory and table limits of one instance.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct InstanceLimits {
    pub max_memory: usize,
    pub max_table_elements: usize,
}

/// Everything needed to create instances of one module, shared by workers.
#[derive(Clone)]
pub(crate) struct Instantiator {
    engine: Engine,
    pre: InstancePre<HostState>,
    limits: InstanceLimits,
}

impl Instantiator {
    /// Links the module against the SDK's host functions.
    pub fn new(engine: &Engine, module: &wasmtime::Module, limits: InstanceLimits) -> Result<Self, String> {
        let mut linker = Linker::new(engine);
        linker.func_wrap(abi::HOST_MODULE, abi::PANIC_IMPORT, record_panic).map_err(|e| format!("{e:#}"))?;
        let pre = linker.instantiate_pre(module).map_err(|e| format!("{e:#}"))?;
        Ok(Instantiator { engine: engine.clone(), pre, limits })
    }

    /// A fresh instance: the module's initial state, nothing else.
    pub fn instantiate(&self) -> Result<GuestInstance, TaskFailure> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory)
            .table_elements(self.limits.max_table_elements)
            .instances(1)
            .memories(1)
            .tables(1)
            .build();
        let mut store = Store::new(&self.engine, HostState { limits, panic: None });
        store.limiter(|state| &mut state.limits);
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            if e.is::<Trap>() { failure_from(&mut store, e) } else { TaskFailure::Instantiate(format!("{e:#}")) }
        })?;
        let memory = instance
            .get_memory(&mut store, abi::MEMORY_EXPORT)
            .ok_or_else(|| TaskFailure::Instantiate("the instance has no memory export".into()))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, abi::ALLOC_EXPORT)
            .map_err(|e| TaskFailure::Instantiate(format!("{e:#}")))?;
        Ok(GuestInstance { store, instance, memory, alloc })
    }
}

/// One live instance of the module.
pub(crate) struct GuestInstance {
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
}

impl GuestInstance {
    /// The ABI version the module reports.
    pub fn abi_version(&mut self) -> Result<u32, TaskFailure> {
        let f = self
            .instance
            .get_typed_func::<(), i32>(&mut self.store, abi::ABI_VERSION_EXPORT)
            .map_err(|e| TaskFailure::Abi(format!("{e:#}")))?;
        let version = f.call(&mut self.store, ()).map_err(|e| failure_from(&mut self.store, e))?;
        Ok(version as u32)
    }

    /// Calls the task exported as `export` with postcard-encoded `args` and
    /// returns the postcard-encoded result.
    pub fn call(&mut self, export: &str, args: &[u8]) -> Result<Vec<u8>, TaskFailure> {
        let len = i32::try_from(args.len())
            .map_err(|_| TaskFailure::EncodeArguments(format!("{} bytes of arguments exceed 2 GiB", args.len())))?;
        let task = self
            .instance
            .get_typed_func::<(i32, i32), i32>(&mut self.store, export)
            .map_err(|e| TaskFailure::Abi(format!("{e:#}")))?;

        let ptr = self.alloc.call(&mut self.store, len).map_err(|e| failure_from(&mut self.store, e))?;
        if ptr == 0 && len > 0 {
            return Err(TaskFailure::Abi(format!("wasmpool_alloc({len}) returned null (guest out of memory?)")));
        }
        let start = ptr as u32 as usize;
        let dest =
            self.memory.data_mut(&mut self.store).get_mut(start..start.saturating_add(args.len())).ok_or_else(
                || TaskFailure::Abi(format!("wasmpool_alloc({len}) returned {start:#x}, outside memory")),
            )?;
        dest.copy_from_slice(args);

        let header_ptr = task.call(&mut self.store, (ptr, len)).map_err(|e| failure_from(&mut self.store, e))?;
        let header = self.read_header(header_ptr as u32 as usize)?;
        let payload = self.read(header.payload_ptr as usize, header.payload_len as usize, "the result payload")?;
        match header.status {
            abi::status::OK => Ok(payload.to_vec()),
            abi::status::TASK_ERROR => Err(TaskFailure::Failed(String::from_utf8_lossy(payload).into_owned())),
            abi::status::BAD_ARGUMENTS => Err(TaskFailure::BadArguments(String::from_utf8_lossy(payload).into_owned())),
            other => Err(TaskFailure::Abi(format!("unknown result status {other}"))),
        }
    }

    fn read_header(&self, ptr: usize) -> Result<abi::ResultHeader, TaskFailure> {
        let bytes = self.read(ptr, abi::RESULT_HEADER_LEN, "the result header")?;
        let mut header = [0u8; abi::RESULT_HEADER_LEN];
        header.copy_from_slice(bytes);
        Ok(abi::ResultHeader::from_bytes(header))
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
    let message = text(&mut caller, msg_ptr, msg_len, MAX_PANIC_MESSAGE);
    let file = text(&mut caller, file_ptr, file_len, MAX_PANIC_FILE);
    let location = format!("{file}:{}:{}", line as u32, column as u32);
    caller.data_mut().panic = Some(ReportedPanic { message, location });
}

/// Turns a failed call into a [`TaskFailure`]: a reported panic if the guest
/// reported one, else the trap with its backtrace.
fn failure_from(store: &mut Store<HostState>, error: wasmtime::Error) -> TaskFailure {
    if let Some(panic) = store.data_mut().panic.take() {
        return TaskFailure::Panic { message: panic.message, location: panic.location };
    }
    let frames = error
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .map(|frame| match frame.func_name() {
                    Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
                    None => format!("<wasm function {}>", frame.func_index()),
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    TaskFailure::Trap { kind, frames }
}
