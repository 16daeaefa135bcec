//! Task components: WebAssembly components of the `wasmpool:task` world
//! (`wit/wasmpool-task.wit`), such as componentize-py builds from a Python
//! module. The path beside core modules (`module`, `instance`): a component
//! is compiled, asked for its tasks, and called with JSON arguments, each
//! call in a fresh instance, under the same sandbox limits.
//!
//! A component always imports WASI (preview 2): componentize-py's CPython
//! reads its environment even to compute a square root. Each call gets a
//! fresh WASI context with nothing granted but what the pool's
//! [`WasiConfig`] grants (`sandbox::component_wasi`), `wasi:random` drawing
//! from the task's seeded stream, and output captured up to the output
//! limit.
//!
//! Everything a component hands back is bounded before it is copied: no
//! call may pass the host more than [`transfer_limit`] bytes (wasmtime's
//! hostcall fuel, which counts every string and list it lifts), and what
//! arrives gets the cuts of core modules (`runtime::cuts`): a result over
//! `max_output` is refused, exception texts are cut, task names checked
//! as the ABI checks them.

use crate::error::{LimitExceeded, TaskFailure};
use crate::runtime::component_start;
use crate::runtime::cuts::{MAX_PANIC_FILE, cap, capped};
use crate::runtime::fresh_state::{NotRestored, StoreSnapshot};
use crate::runtime::init::InitCall;
use crate::runtime::instance::{error_text, trap_failure};
use crate::runtime::module::{ParamInfo, TaskInfo};
use crate::runtime::outbox::{Outbox, Sent};
use crate::runtime::store_core::{self, StoreCore, WithCore};
use crate::sandbox::component_wasi::{self, ComponentWasiHost, Refused};
use crate::sandbox::interrupt::{RunLimits, Watch};
use crate::sandbox::limiter::GuestLimiter;
use crate::sandbox::limits::Limits;
use crate::sandbox::wasi::{ComponentWasi, TaskOutput, WasiConfig};
use bindings::exports::wasmpool::task::tasks::{CallError, TaskInfo as WitTaskInfo};
use std::collections::HashSet;
use std::sync::Arc;
use wasmpool_abi as abi;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable, WasmStr};
use wasmtime::{Engine, Store, StoreContextMut, Trap};
use wasmtime_wasi::{WasiCtxView, WasiView};

/// The bindings `wasmtime` generates for the world.
mod bindings {
    #![allow(missing_docs, unreachable_pub, clippy::all)]
    wasmtime::component::bindgen!({
        path: "wit/wasmpool-task.wit",
        world: "task-module",
        imports: { default: trappable },
    });
}

/// The world's host interface, where `send` lives.
const HOST_INTERFACE: &str = "wasmpool:task/host@0.1.0";

/// Most bytes of parameter or result type text kept per task.
const MAX_TYPE_TEXT: usize = 1024;

/// Most bytes one call into a component, or one call it makes into the
/// host, may copy out of it: the largest result or message the pool takes,
/// with room for the texts around them (exception messages and tracebacks
/// before their cuts, the task list). Past this wasmtime stops copying and
/// the call fails with the output limit.
pub(crate) fn transfer_limit(limits: &Limits) -> usize {
    limits.max_output.max(limits.max_message).saturating_add(1 << 20)
}

/// Whether `bytes` are a component rather than a core module: the preamble
/// after `\0asm` gives the layer, 1 for components.
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// What the host keeps per component instance: the store core every code
/// kind has, and what a component adds.
pub(crate) struct ComponentState {
    core: StoreCore,
    wasi: ComponentWasi,
    seed: u64,
    max_message: usize,
}

impl WithCore for ComponentState {
    fn core(&self) -> &StoreCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut StoreCore {
        &mut self.core
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi.ctx, table: &mut self.wasi.table }
    }
}

impl ComponentWasiHost for ComponentState {
    fn table_and_watch(&mut self) -> (&mut ResourceTable, &Watch) {
        (&mut self.wasi.table, &self.core.watch)
    }
}

impl bindings::wasmpool::task::host::Host for ComponentState {
    fn task_seed(&mut self) -> wasmtime::Result<u64> {
        Ok(self.seed)
    }

    fn progress(&mut self, done: u64, total: u64) -> wasmtime::Result<()> {
        self.deliver(Sent::Progress { done, total })
    }

    /// Not called: `send` is linked as [`send_message`], which looks at a
    /// message's length before copying it.
    fn send(&mut self, message: String) -> wasmtime::Result<()> {
        self.send_checked(message.as_bytes())
    }
}

impl ComponentState {
    fn deliver(&mut self, sent: Sent) -> wasmtime::Result<()> {
        self.core.deliver(sent).map(drop)
    }

    fn send_checked(&mut self, message: &[u8]) -> wasmtime::Result<()> {
        if let Some(limit) = LimitExceeded::output_over("message", message.len(), self.max_message) {
            return Err(wasmtime::Error::new(limit));
        }
        if self.core.outbox.is_none() {
            return Ok(());
        }
        self.deliver(Sent::Message(message.to_vec()))
    }
}

/// The world's `send`, taking the message as the guest's string: its
/// length is checked before its bytes are copied (and copied only if
/// someone listens).
fn send_message(mut store: StoreContextMut<'_, ComponentState>, (message,): (WasmStr,)) -> wasmtime::Result<()> {
    let max_message = store.data().max_message;
    let text = message.to_str(&store)?;
    if let Some(limit) = LimitExceeded::output_over("message", text.len(), max_message) {
        return Err(wasmtime::Error::new(limit));
    }
    let bytes = text.as_bytes().to_vec();
    store.data_mut().send_checked(&bytes)
}

/// A compiled task component, linked and ready to instantiate, with its
/// task list.
#[derive(Clone)]
pub(crate) struct TaskComponent {
    engine: Engine,
    pre: bindings::TaskModulePre<ComponentState>,
    limits: Limits,
    wasi: WasiConfig,
    epoch_checks: bool,
    /// Whether inputs get a fresh state by resetting one instance in place
    /// ([`with_resets`](Self::with_resets)).
    resets: bool,
    /// The init task, run on every new instance after its start
    /// ([`with_init`](Self::with_init)).
    init: Option<Arc<InitCall>>,
    /// The argument of the start call (`component_start`): the source of
    /// tasks written in Python, or empty.
    start: Arc<str>,
    /// The deadline and fuel of a new instance's start and init task: the
    /// load's (those [`new`](Self::new) was given), not those of the input
    /// the instance is made for. The module's top-level code runs there.
    start_run: RunLimits,
    /// The tasks, as the component describes them.
    pub tasks: Vec<TaskInfo>,
}

impl TaskComponent {
    /// Links `component` (compiled by `engine`) to WASI and the host
    /// interface, and asks it for its tasks, under `run`'s limits. Every
    /// new instance is started with `start` (`component_start`; empty if
    /// `None`).
    pub(crate) fn new(
        engine: &Engine,
        component: &Component,
        limits: Limits,
        wasi: WasiConfig,
        epoch_checks: bool,
        start: Option<&str>,
        run: &RunLimits,
    ) -> Result<Self, TaskFailure> {
        let link_error = |e: wasmtime::Error| TaskFailure::Instantiate(capped(format!("{e:#}")));
        let mut linker: Linker<ComponentState> = Linker::new(engine);
        component_wasi::link(&mut linker, &wasi).map_err(link_error)?;
        bindings::TaskModule::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(link_error)?;
        linker.allow_shadowing(true);
        linker
            .instance(HOST_INTERFACE)
            .and_then(|mut host| host.func_wrap("send", send_message))
            .map_err(link_error)?;
        linker.allow_shadowing(false);
        let pre = linker.instantiate_pre(component).map_err(link_error)?;
        let pre = bindings::TaskModulePre::new(pre).map_err(link_error)?;
        let mut this = TaskComponent {
            engine: engine.clone(),
            pre,
            limits,
            wasi,
            epoch_checks,
            resets: false,
            init: None,
            start: Arc::from(start.unwrap_or("")),
            start_run: RunLimits { deadline: run.deadline, fuel: run.fuel, ..RunLimits::default() },
            tasks: Vec::new(),
        };
        let (mut store, instance, answer) = this.instantiate_started(run)?;
        // A start may answer with a cheaper equivalent of its argument for
        // later instances (wit/wasmpool-task.wit): wasmpool's runner
        // answers with the module's compiled code beside its source.
        if !this.start.is_empty()
            && !matches!(answer.as_str(), "" | "null")
            && answer.len() <= component_start::MAX_START_ARGUMENT
        {
            this.start = Arc::from(answer);
        }
        let described = instance.wasmpool_task_tasks().call_describe(&mut store);
        let described = described.map_err(|e| classify(&mut store, &this.limits, e, Step::Call("task list")))?;
        this.tasks = checked_tasks(described)?;
        Ok(this)
    }

    /// The argument every new instance's start is given: the start's own
    /// answer, once the first instance gave one (see [`new`](Self::new)).
    pub(crate) fn start(&self) -> &str {
        &self.start
    }

    /// Makes [`call_json_fresh`](Self::call_json_fresh) reset one
    /// instance in place between inputs (`fresh_state::whole_store`), if
    /// `reset` and this system can; else every input gets a new instance.
    /// Only for a component [`check_component`](crate::runtime::fresh_state::check_component) passed.
    pub(crate) fn with_resets(mut self, reset: bool) -> Self {
        self.resets = reset && crate::runtime::fresh_state::dirty_pages::DirtyPages::get().is_some();
        self
    }

    /// Runs `init` (a task of this component, its arguments JSON) on every
    /// new instance after its start: every input starts from the state it
    /// leaves, in a new instance or one reset in place (the pristine
    /// instance runs it too). Its output is dropped.
    pub(crate) fn with_init(mut self, init: Option<Arc<InitCall>>) -> Self {
        self.init = init;
        self
    }

    /// Makes one new instance, start and init task included, under
    /// `run`'s limits: how a pool reports at build an init task that fails.
    pub(crate) fn probe_init(&self, run: &RunLimits) -> Result<(), TaskFailure> {
        self.instantiate(run).map(drop)
    }

    /// A new instance, made the same way whatever input it is for (the
    /// seed [`INSTANTIATION_SEED`] for `task-seed` and `wasi:random`, no
    /// outbox), under `run`'s deadline and fuel, its start and its init
    /// task: so a new instance is the same for every input, and the same
    /// as a reset one.
    /// Callers then prepare it for an input ([`prepare_call`](Self::prepare_call)),
    /// which starts the input's deadline and fuel afresh.
    fn instantiate(&self, run: &RunLimits) -> Result<(Store<ComponentState>, bindings::TaskModule), TaskFailure> {
        self.instantiate_started(run).map(|(store, instance, _)| (store, instance))
    }

    /// [`instantiate`](Self::instantiate), with what the start answered.
    fn instantiate_started(
        &self,
        run: &RunLimits,
    ) -> Result<(Store<ComponentState>, bindings::TaskModule, String), TaskFailure> {
        let limits = &self.limits;
        let wasi = self
            .wasi
            .component_context(limits.max_output, limits.max_memory, INSTANTIATION_SEED)
            .map_err(TaskFailure::Instantiate)?;
        let state = ComponentState {
            core: StoreCore::new(GuestLimiter::for_component(limits.max_memory, limits.max_table_elements)),
            wasi,
            seed: INSTANTIATION_SEED,
            max_message: limits.max_message,
        };
        let mut store = StoreCore::store(&self.engine, state, self.epoch_checks);
        // The start copies the module's source in, and may answer with its
        // compiled code: room for both, whatever the output limit.
        store.set_hostcall_fuel(transfer_limit(limits).max(3 * component_start::MAX_START_ARGUMENT));
        // The start and the init run under the load's deadline and fuel,
        // stopped still by the input's cancellation or the pool's closing.
        let run = &RunLimits { cancel: run.cancel.clone(), closing: run.closing.clone(), ..self.start_run.clone() };
        self.prepare_call(&mut store, INSTANTIATION_SEED, None, run)?;
        let instance =
            self.pre.instantiate(&mut store).map_err(|e| classify(&mut store, limits, e, Step::Instantiate))?;
        // The start (`call("", start)`, wit/wasmpool-task.wit): wasmpool's
        // runner opens the standard streams, and runs the module's source
        // if the component carries it. A component without a start says
        // it has no such task, which is fine unless it was given an
        // argument; any other refusal fails the instance.
        let answer: Result<String, CallError> = instance
            .wasmpool_task_tasks()
            .call_call(&mut store, "", &self.start)
            .map_err(|e| classify(&mut store, limits, e, Step::Instantiate))?;
        let answer = match answer {
            Ok(answer) => answer,
            Err(CallError::NoSuchTask(_)) if self.start.is_empty() => String::new(),
            Err(error) => return Err(call_failure(error)),
        };
        // What the module's top-level code printed is every instance's, no
        // input's.
        store.data_mut().wasi.take_output();
        store.set_hostcall_fuel(transfer_limit(limits));
        if let Some(init) = &self.init {
            self.run_init(&mut store, &instance, init, run)?;
        }
        Ok((store, instance, answer))
    }

    /// Runs the init task in a new instance, with its own seed, under a
    /// fresh start of `run`'s limits; what it printed is dropped.
    fn run_init(
        &self,
        store: &mut Store<ComponentState>,
        instance: &bindings::TaskModule,
        init: &InitCall,
        run: &RunLimits,
    ) -> Result<(), TaskFailure> {
        let failed = |failure| TaskFailure::Init { task: init.task.clone(), failure: Box::new(failure) };
        let args = std::str::from_utf8(&init.args)
            .map_err(|_| failed(TaskFailure::BadArguments("the arguments are not UTF-8 JSON".into())))?;
        self.prepare_call(store, init.seed, None, run)?;
        store.data().wasi.reseed(init.seed);
        let answer = instance.wasmpool_task_tasks().call_call(&mut *store, &init.task, args);
        let state = store.data_mut();
        state.wasi.take_output();
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(failed(call_failure(error))),
            Err(trap) => Err(failed(classify(store, &self.limits, trap, Step::Call("result")))),
        }
    }

    /// A new instance ([`instantiate`](Self::instantiate)) prepared for an
    /// input.
    fn instantiate_for(
        &self,
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Result<KeptInstance, TaskFailure> {
        let (mut store, instance) = self.instantiate(run)?;
        self.prepare_call(&mut store, seed, outbox, run)?;
        Ok(KeptInstance { store, instance })
    }

    /// Sets `store` up for one call: the input's seed (the host's
    /// `task-seed`), its outbox, its deadline and fuel.
    fn prepare_call(
        &self,
        store: &mut Store<ComponentState>,
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> Result<(), TaskFailure> {
        let state = store.data_mut();
        state.seed = seed;
        state.core.outbox = outbox;
        // A growth refused in an earlier call (which Python raised as
        // MemoryError and survived) is not this call's: arming forgets it.
        StoreCore::arm(store, self.epoch_checks, self.limits.fuel, run)
    }

    /// Calls the task `name` with `args` (JSON) in a fresh instance, with
    /// the task's `seed` and `outbox`, under `run`'s limits: the result as
    /// JSON, and what the task wrote.
    pub(crate) fn call_json(
        &self,
        name: &str,
        args: &str,
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> (Result<String, TaskFailure>, TaskOutput) {
        let mut kept = None;
        self.call_json_in(&mut kept, name, args, seed, outbox, run)
    }

    /// [`call_json`](Self::call_json) in the instance `kept` holds (a new
    /// one if it holds none), which it holds again afterwards unless the
    /// call trapped: module state carries over from call to call
    /// (`InstanceMode::PerWorker`). An exception the task raised leaves the
    /// instance sound (the runner caught it); a trap (a limit, a crash in
    /// the interpreter) may not, so that instance is dropped.
    pub(crate) fn call_json_in(
        &self,
        kept: &mut Option<KeptInstance>,
        name: &str,
        args: &str,
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> (Result<String, TaskFailure>, TaskOutput) {
        let prepared = match kept.take() {
            Some(mut held) => self.prepare_call(&mut held.store, seed, outbox, run).map(|()| held),
            None => self.instantiate_for(seed, outbox, run),
        };
        let mut held = match prepared {
            Ok(held) => held,
            Err(failure) => return (Err(failure), TaskOutput::default()),
        };
        let (result, output, sound) = self.call_in(&mut held, name, args, seed);
        if sound {
            *kept = Some(held);
        }
        (result, output)
    }

    /// [`call_json`](Self::call_json), in the instance `slot` keeps and
    /// puts back after each input as it was before the first
    /// (`fresh_state::whole_store`): the same results, at the cost of a
    /// call in a kept instance. Where the instance cannot be put back (it
    /// trapped, its memory grew, this system has no page scan), the next
    /// input gets a new one, as without resets.
    pub(crate) fn call_json_fresh(
        &self,
        slot: &mut ResetSlot,
        name: &str,
        args: &str,
        seed: u64,
        outbox: Option<Box<dyn Outbox>>,
        run: &RunLimits,
    ) -> (Result<String, TaskFailure>, TaskOutput) {
        if !self.resets || slot.unavailable.is_some() {
            return self.call_json(name, args, seed, outbox, run);
        }
        self.tidy(slot);
        let (mut held, snapshot) = match slot.ready.take() {
            Some((mut held, snapshot)) => match self.prepare_call(&mut held.store, seed, outbox, run) {
                Ok(()) => (held, Some(snapshot)),
                Err(failure) => return (Err(failure), TaskOutput::default()),
            },
            None => {
                let (store, instance) = match self.instantiate(run) {
                    Ok(made) => made,
                    Err(failure) => return (Err(failure), TaskOutput::default()),
                };
                let mut held = KeptInstance { store, instance };
                let snapshot = self.snapshot(slot, &mut held, run);
                if let Err(failure) = self.prepare_call(&mut held.store, seed, outbox, run) {
                    return (Err(failure), TaskOutput::default());
                }
                (held, snapshot)
            }
        };
        let (result, output, sound) = self.call_in(&mut held, name, args, seed);
        // Put back by `tidy`: after the result is on its way, where the
        // worker can.
        if let (true, Some(snapshot)) = (sound, snapshot) {
            slot.ready = Some((held, snapshot));
            slot.dirty = true;
        }
        (result, output)
    }

    /// Puts the instance `slot` keeps back as it was before its first
    /// input, if an input ran in it since (see [`call_json_fresh`](Self::call_json_fresh)):
    /// every page written and every global, from the pristine instance.
    /// An instance that cannot be put back (its memory grew, it made or
    /// closed a WASI handle) is dropped: the next input gets a new one.
    pub(crate) fn tidy(&self, slot: &mut ResetSlot) {
        if !std::mem::take(&mut slot.dirty) {
            return;
        }
        let restored = match (slot.ready.as_mut(), slot.pristine.as_ref()) {
            (Some((held, snapshot)), Some(pristine)) => {
                let handle_changes = held.store.data().wasi.handle_changes();
                snapshot.restore(&mut held.store, pristine, handle_changes)
            }
            _ => Err(NotRestored("no pristine instance to copy from".into())),
        };
        if let Err(NotRestored(why)) = restored {
            tracing::debug!("the next input gets a new instance: {why}");
            slot.ready = None;
        }
    }

    /// The snapshot of `held`, new and not yet called, against the
    /// pristine instance `slot` keeps (made now, under `run`'s limits, if
    /// it has none). `None` if there is none: for this input only if the
    /// pristine instance could not be made (it is tried again), for good
    /// if the two instances cannot stand for each other.
    fn snapshot(&self, slot: &mut ResetSlot, held: &mut KeptInstance, run: &RunLimits) -> Option<StoreSnapshot> {
        if slot.pristine.is_none() {
            match self.instantiate(run) {
                Ok((store, _)) => slot.pristine = Some(store),
                Err(failure) => {
                    tracing::debug!("this input gets a new instance: a pristine instance failed: {failure}");
                    return None;
                }
            }
        }
        let pristine = slot.pristine.as_mut()?;
        let handle_changes = held.store.data().wasi.handle_changes();
        match StoreSnapshot::take(&mut held.store, pristine, handle_changes) {
            Ok(snapshot) => Some(snapshot),
            Err(NotRestored(why)) => {
                tracing::debug!("every input gets a new instance: {why}");
                slot.unavailable = Some(why);
                slot.pristine = None;
                None
            }
        }
    }

    /// Calls the task `name` in `held`, prepared for the input: the
    /// result, the output, and whether the instance is still sound (the
    /// call did not trap).
    fn call_in(
        &self,
        held: &mut KeptInstance,
        name: &str,
        args: &str,
        seed: u64,
    ) -> (Result<String, TaskFailure>, TaskOutput, bool) {
        // The call draws `wasi:random` from the start of the input's stream,
        // whatever instantiation drew: the same bytes in a fresh instance
        // and in a kept one.
        held.store.data().wasi.reseed(seed);
        let (result, sound) = match held.instance.wasmpool_task_tasks().call_call(&mut held.store, name, args) {
            Ok(Ok(json)) => (self.checked_result(json), true),
            Ok(Err(error)) => (Err(call_failure(error)), true),
            Err(trap) => (Err(classify(&mut held.store, &self.limits, trap, Step::Call("result"))), false),
        };
        let state = held.store.data_mut();
        state.core.outbox = None;
        let output = state.wasi.take_output();
        (result, output, sound)
    }

    /// A task's result, if within the output limit.
    fn checked_result(&self, json: String) -> Result<String, TaskFailure> {
        match LimitExceeded::output_over("result", json.len(), self.limits.max_output) {
            Some(limit) => Err(TaskFailure::Limit(limit)),
            None => Ok(json),
        }
    }
}

/// A component instance with its store, kept for a worker's next inputs
/// (`InstanceMode::PerWorker`).
pub(crate) struct KeptInstance {
    store: Store<ComponentState>,
    instance: bindings::TaskModule,
}

/// What a worker keeps to reset one instance in place between inputs
/// ([`TaskComponent::call_json_fresh`]).
#[derive(Default)]
pub(crate) struct ResetSlot {
    /// A store with an instance in which nothing runs: the pages a new
    /// instance starts from.
    pristine: Option<Store<ComponentState>>,
    /// The instance for the next input and its state before its first.
    ready: Option<(KeptInstance, StoreSnapshot)>,
    /// Whether `ready` ran an input since it was last put back: it is put
    /// back by [`TaskComponent::tidy`], after the input's result has gone
    /// to the caller, or before the next input at the latest.
    dirty: bool,
    /// Why this worker's inputs get new instances instead, once known.
    unavailable: Option<String>,
}

/// The seed of `wasi:random` while an instance is made (see
/// `TaskComponent::instantiate`).
const INSTANTIATION_SEED: u64 = 0;

/// The task list a component described, checked as a core module's task
/// records are (valid, distinct names: `abi::decode_manifest`), with its
/// texts cut.
fn checked_tasks(described: Vec<WitTaskInfo>) -> Result<Vec<TaskInfo>, TaskFailure> {
    let mut seen = HashSet::with_capacity(described.len());
    described
        .into_iter()
        .map(|info| {
            if !abi::is_valid_task_name(&info.name) {
                let name = cap(info.name, abi::MAX_TASK_NAME_LEN);
                return Err(TaskFailure::Abi(format!(
                    "the component describes a task named {name:?}: a task name is 1 to {} ASCII letters, digits \
                     and `_`, not starting with a digit",
                    abi::MAX_TASK_NAME_LEN
                )));
            }
            if !seen.insert(info.name.clone()) {
                return Err(TaskFailure::Abi(format!("the component describes task `{}` twice", info.name)));
            }
            Ok(TaskInfo {
                name: info.name,
                params: info
                    .params
                    .into_iter()
                    .map(|p| {
                        // `ty = default` for a parameter with a default (the WIT's `param.ty`).
                        let (ty, default) = match p.ty.split_once(" = ") {
                            Some((ty, default)) => (ty.to_owned(), Some(cap(default.to_owned(), MAX_TYPE_TEXT))),
                            None => (p.ty, None),
                        };
                        ParamInfo { name: cap(p.name, abi::MAX_TASK_NAME_LEN), ty: cap(ty, MAX_TYPE_TEXT), default }
                    })
                    .collect(),
                result: cap(info.returns, MAX_TYPE_TEXT),
                doc: capped(info.doc),
                json: true,
            })
        })
        .collect()
}

/// A call's error as the task's failure, its texts cut as a core
/// module's are.
fn call_failure(error: CallError) -> TaskFailure {
    match error {
        CallError::NoSuchTask(name) => {
            TaskFailure::Abi(format!("the component has no task named {:?}", cap(name, abi::MAX_TASK_NAME_LEN)))
        }
        CallError::BadArguments(why) => TaskFailure::BadArguments(capped(why)),
        CallError::Raised(exception) => TaskFailure::Panic {
            message: capped(format!("{}\n{}", exception.message, exception.traceback.trim_end())),
            location: cap(exception.location, MAX_PANIC_FILE),
        },
        CallError::BadResult(why) => TaskFailure::Failed(capped(why)),
    }
}

/// The words of wasmtime's error when a call copies more than the store's
/// hostcall fuel allows (its type is private).
const TRANSFER_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Whether `error` is wasmtime refusing to copy more than
/// [`transfer_limit`] in one call.
fn is_transfer_exhausted(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| cause.to_string().contains(TRANSFER_EXHAUSTED))
}

/// What a failed step of a component was doing: what it was handing back
/// (should that have been too long to copy), and what an error that is
/// not a trap means then.
#[derive(Clone, Copy)]
enum Step {
    /// Instantiating it: an error is a failure to instantiate.
    Instantiate,
    /// Asking it for its tasks, or calling one: an error the host's
    /// lifting raised (a string outside memory, say) is the guest
    /// breaking the ABI.
    Call(&'static str),
}

/// A trap in a component as the task's failure.
fn classify(store: &mut Store<ComponentState>, limits: &Limits, error: wasmtime::Error, step: Step) -> TaskFailure {
    let state = store.data_mut();
    if let Some(failure) = store_core::stopped_by_host(&error) {
        return failure;
    }
    if let Some(Refused(capability)) = error.downcast_ref::<Refused>() {
        let failure = TaskFailure::Failed(crate::error::STOPPED_AT_THE_REFUSED_CALL.into());
        return TaskFailure::NotGranted { capability: *capability, failure: Box::new(failure) };
    }
    if let Some(overflow) = state.wasi.overflow() {
        return TaskFailure::Limit(overflow);
    }
    if let Some(refusal) = state.core.limiter.take_refusal() {
        return TaskFailure::Limit(refusal);
    }
    if let Some(limit) = crate::sandbox::wasi::handles_exceeded(&error) {
        return TaskFailure::Limit(limit);
    }
    if let (Step::Call(copied), true) = (step, is_transfer_exhausted(&error)) {
        return TaskFailure::Limit(LimitExceeded::Output {
            what: copied.into(),
            len: None,
            limit: limits.max_output as u64,
        });
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        // WASI 0.2's `exit` says only success or failure (1); Python's
        // `sys.exit(n)` is an exception the runner reports with `n`.
        let status = if exit.0 == 0 { "success" } else { "failure" };
        return TaskFailure::Failed(format!(
            "the task exited the interpreter with {status} (os._exit or a WASI exit: it returned no result)"
        ));
    }
    if let Some(failure) = store_core::engine_limit(&error, &state.core, limits) {
        return failure;
    }
    match error.downcast_ref::<Trap>() {
        Some(_) => trap_failure(error),
        None => match step {
            Step::Instantiate => TaskFailure::Instantiate(capped(error_text(&error))),
            Step::Call(_) => TaskFailure::Abi(capped(error_text(&error))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Capability;
    use crate::runtime::engine::Allocator;
    use crate::runtime::engine::{EngineSettings, create_engine};

    /// A component built from `examples/python/tasks.py` by
    /// componentize-py, named by `WASMPOOL_TEST_COMPONENT`.
    fn component() -> Vec<u8> {
        let path = std::env::var("WASMPOOL_TEST_COMPONENT").expect("WASMPOOL_TEST_COMPONENT names a built component");
        std::fs::read(path).expect("the test component can be read")
    }

    /// The test component, compiled once for every test, by an engine
    /// with the settings of a pool of tasks.py with fuel (every test sets
    /// some): through the module cache, where `.ci/python`'s pytest run
    /// (`test_fuel_stops_a_python_task`) left it, so CI compiles it once.
    /// (With the component's start argument, the module's source, which
    /// comes off before compiling as a pool takes it off.)
    fn compiled() -> &'static (Engine, Component, Option<String>) {
        static COMPILED: std::sync::OnceLock<(Engine, Component, Option<String>)> = std::sync::OnceLock::new();
        COMPILED.get_or_init(|| {
            let limits = Limits::default();
            let settings = EngineSettings {
                allocator: Allocator::Auto,
                component: true,
                // Tests run in parallel on this engine, each holding up to
                // three instances (a kept one, a pristine one, a new one).
                instance_slots: 16,
                max_memory: limits.max_memory,
                max_table_elements: limits.max_table_elements,
                max_stack: limits.max_stack,
                epoch_interruption: true,
                consume_fuel: true,
            };
            let (engine, _) = create_engine(&settings).expect("an engine");
            let dir = crate::runtime::cache::default_dir();
            let bytes = component();
            let split = crate::runtime::component_start::split(&bytes).expect("a usable start argument");
            let component = crate::runtime::cache::compile::<Component>(&engine, &split.code, dir.as_deref())
                .expect("the component compiles");
            (engine, component, split.start)
        })
    }

    fn load(limits: Limits, wasi: WasiConfig) -> TaskComponent {
        let (engine, component, start) = compiled();
        let limits = Limits { fuel: limits.fuel.or(Some(u64::MAX / 2)), ..limits };
        // Epoch checks as compiled; nothing ticks, so no deadline ends a call.
        TaskComponent::new(engine, component, limits, wasi, true, start.as_deref(), &RunLimits::default())
            .expect("it loads")
    }

    #[test]
    fn layers_tell_components_from_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(!is_component(b"\0asm"));
    }

    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn later_instances_start_from_the_compiled_code_the_first_one_answered() {
        let (_, _, start) = compiled();
        let source = start.as_deref().expect("the test component carries its module's source");
        assert!(!source.contains("\"code\""), "the build carries the source only");
        let tasks = load(Limits::default(), WasiConfig::new());
        assert!(tasks.start.contains("\"code\"") && tasks.start.contains("\"source\""));
        // Instances started from it serve as the first did, tracebacks
        // with their source lines included.
        let run = RunLimits::default();
        assert_eq!(tasks.call_json("add", "[2, 3]", 0, None, &run).0.unwrap(), "5");
        let error = tasks.call_json("boom", "0", 0, None, &run).0.unwrap_err().to_string();
        assert!(error.contains("ZeroDivisionError") && error.contains("return 1 / x"), "{error}");
    }

    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn a_python_component_lists_and_runs_its_tasks() {
        let tasks = load(Limits::default(), WasiConfig::new());
        let names: Vec<_> = tasks.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sqrt",
                "pi_hits",
                "add",
                "boom",
                "now",
                "hog",
                "chatty",
                "calls_so_far",
                "entropy",
                "str_hash",
                "digits",
                "read_text",
                "write_text",
                "env",
                "nap",
                "rolls",
                "leave",
                "walk",
                "load_table",
                "extend_table",
                "nan_bits",
                "echo"
            ]
        );
        assert_eq!(tasks.tasks[0].doc, "The square root.");
        let run = RunLimits::default();
        assert_eq!(tasks.call_json("sqrt", "2", 0, None, &run).0.unwrap(), "1.4142135623730951");
        assert_eq!(tasks.call_json("add", "[1, 2]", 0, None, &run).0.unwrap(), "3");
        let a = tasks.call_json("pi_hits", "1000", 7, None, &run).0.unwrap();
        assert_eq!(a, tasks.call_json("pi_hits", "1000", 7, None, &run).0.unwrap());
        assert_ne!(a, tasks.call_json("pi_hits", "1000", 8, None, &run).0.unwrap());
        match tasks.call_json("boom", "0", 0, None, &run).0 {
            Err(TaskFailure::Panic { message, location }) => {
                assert!(message.starts_with("ZeroDivisionError"), "{message}");
                assert_eq!(location, "tasks.py:27");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(tasks.call_json("add", "1", 0, None, &run).0, Err(TaskFailure::BadArguments(_))));
        assert!(matches!(
            tasks.call_json("now", "null", 0, None, &run).0,
            Err(TaskFailure::NotGranted { capability: Capability::WallClock, .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn a_fifo_in_a_granted_folder_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(dir.path().join("pipe").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::write(dir.path().join("plain.txt"), "text").unwrap();
        let tasks = load(Limits::default(), WasiConfig::new().read_only_dir(dir.path(), "in"));
        let run = RunLimits { deadline: Some(std::time::Duration::from_secs(5)), ..RunLimits::default() };
        let start = std::time::Instant::now();
        match tasks.call_json("read_text", "\"in/pipe\"", 0, None, &run).0 {
            Err(TaskFailure::Panic { message, .. }) => assert!(message.starts_with("PermissionError"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "waited {:?}", start.elapsed());
        assert_eq!(tasks.call_json("read_text", "\"in/plain.txt\"", 0, None, &run).0.unwrap(), "\"text\"");
    }

    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn a_granted_sleep_ends_at_the_deadline() {
        // `time.sleep` waits in `wasi:io/poll.poll`, on the clock granted.
        let tasks = load(Limits::default(), WasiConfig::new().monotonic_clock());
        let limit = std::time::Duration::from_millis(300);
        let ticker = crate::sandbox::interrupt::Ticker::start("test-epochs", {
            let engine = compiled().0.clone();
            move || engine.increment_epoch()
        })
        .unwrap();
        let _ticking = ticker.enter();
        let run = RunLimits { deadline: Some(limit), ..RunLimits::default() };
        let start = std::time::Instant::now();
        let result = tasks.call_json("nap", "3600", 0, None, &run).0;
        assert_eq!(result, Err(TaskFailure::Limit(LimitExceeded::Deadline { limit })));
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "slept {:?}", start.elapsed());
    }

    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn fuel_stops_a_python_task() {
        let limits = Limits { fuel: Some(50_000_000), ..Limits::default() };
        let tasks = load(limits, WasiConfig::new());
        let run = RunLimits::default();
        assert!(matches!(
            tasks.call_json("pi_hits", "100000000", 0, None, &run).0,
            Err(TaskFailure::Limit(LimitExceeded::Fuel { .. }))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn a_reset_instance_gives_every_input_what_a_new_one_gives() {
        crate::runtime::fresh_state::check_component(&component()).expect("CPython's component can be reset");
        let tasks = load(Limits::default(), WasiConfig::new()).with_resets(true);
        let run = RunLimits::default();
        let mut slot = ResetSlot::default();
        let inputs: [(&str, &str, u64); 9] = [
            ("calls_so_far", "null", 0),
            ("pi_hits", "2000", 7),
            ("chatty", "3", 1),
            ("calls_so_far", "null", 0),
            ("boom", "0", 2),
            ("digits", "5000", 3),
            ("entropy", "16", 4),
            ("pi_hits", "2000", 8),
            ("calls_so_far", "null", 0),
        ];
        for round in 0..3 {
            for (name, args, seed) in inputs {
                let (fresh, fresh_output) = tasks.call_json(name, args, seed, None, &run);
                let (reset, reset_output) = tasks.call_json_fresh(&mut slot, name, args, seed, None, &run);
                assert_eq!(reset, fresh, "{name}({args}), round {round}");
                assert_eq!(reset_output.stdout, fresh_output.stdout, "{name}({args}), round {round}");
                assert_eq!(slot.unavailable, None);
                // Put back after the result, as a worker does (in the last
                // round, by the next input instead).
                if round < 2 {
                    tasks.tidy(&mut slot);
                    assert!(!slot.dirty);
                }
                assert!(slot.ready.is_some(), "{name}({args}) left an instance that could not be put back");
            }
        }
        // A grown memory cannot shrink: that instance goes, the next input
        // gets a new one, which is reset again afterwards.
        assert_eq!(tasks.call_json_fresh(&mut slot, "hog", "64", 0, None, &run).0.unwrap(), "67108864");
        tasks.tidy(&mut slot);
        assert!(slot.ready.is_none());
        assert_eq!(tasks.call_json_fresh(&mut slot, "calls_so_far", "null", 0, None, &run).0.unwrap(), "1");
        assert!(slot.ready.is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[ignore = "needs WASMPOOL_TEST_COMPONENT: a component built by componentize-py"]
    fn an_instance_with_an_init_task_is_reset_to_the_state_after_it() {
        // The kept and the pristine instance both run the init task, so
        // they agree and the instance is reset in place, to the init's state.
        let init = InitCall {
            task: "load_table".into(),
            export: abi::json_export_name("load_table"),
            args: b"50".to_vec(),
            seed: 3,
        };
        let tasks = load(Limits::default(), WasiConfig::new()).with_resets(true).with_init(Some(Arc::new(init)));
        let run = RunLimits::default();
        let mut slot = ResetSlot::default();
        for _ in 0..3 {
            assert_eq!(tasks.call_json_fresh(&mut slot, "extend_table", "5", 0, None, &run).0.unwrap(), "55");
            tasks.tidy(&mut slot);
            assert_eq!(slot.unavailable, None);
            assert!(slot.ready.is_some(), "the instance with its init could not be put back");
        }
        // A new instance runs it too.
        assert_eq!(tasks.call_json("extend_table", "5", 0, None, &run).0.unwrap(), "55");
    }
}
