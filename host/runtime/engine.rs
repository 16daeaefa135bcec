//! The wasmtime engines: compiler settings and the instance allocator
//! (pooling where the machine allows it). Each thread worker gets an engine
//! of its own (see [`engines_for_workers`]); a worker process has one.

use crate::error::{Error, Result};
use crate::runtime::code::CompiledCode;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Allocator {
    /// Pooling if the machine allows it, otherwise on-demand (the default).
    #[default]
    Auto,
    /// Always pooling: building the pool fails if the pool cannot be reserved.
    Pooling,
    /// Always on-demand: `mmap` per instance. Slower to instantiate, but
    /// reserves no address space up front.
    OnDemand,
}

/// The allocator a pool actually uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorKind {
    /// Instances come from a pre-reserved pool of slots.
    Pooling,
    /// Instances are allocated one by one.
    OnDemand,
}

/// What the engine needs to know about the pool it serves.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct EngineSettings {
    pub allocator: Allocator,
    /// Instances alive at once in this engine.
    pub instance_slots: u32,
    /// Whether the engine runs a task component rather than a core module:
    /// the pooling allocator's slots are then sized for one component.
    pub component: bool,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory: usize,
    /// Largest table of one instance, in elements.
    pub max_table_elements: usize,
    /// Largest Wasm stack, in bytes.
    pub max_stack: usize,
    /// Compile epoch checks into the code (deadlines and cancellation in
    /// thread workers; costs about a third of a tight loop's speed).
    pub epoch_interruption: bool,
    /// Compile fuel metering into the code.
    pub consume_fuel: bool,
}

/// Creates the engine, falling back from pooling to on-demand allocation
/// when `Auto` is asked for and the pool cannot be reserved.
pub(crate) fn create_engine(settings: &EngineSettings) -> Result<(Engine, AllocatorKind)> {
    create_compiling_engine(settings, None)
}

/// [`create_engine`], compiling through `incremental` if given (the
/// engine that compiles a component: `runtime::incremental`).
pub(crate) fn create_compiling_engine(
    settings: &EngineSettings,
    incremental: Option<std::sync::Arc<crate::runtime::incremental::IncrementalCache>>,
) -> Result<(Engine, AllocatorKind)> {
    let base_config = |settings: &EngineSettings| {
        let mut config = base_config(settings);
        if let Some(cache) = &incremental {
            // Only with the compiler, which this build always has.
            let _ = config.enable_incremental_compilation(cache.clone());
        }
        config
    };
    let on_demand = || {
        let mut config = base_config(settings);
        // Reserve only what an instance may use, rather than wasmtime's
        // default 4 GiB per memory: the fallback exists for machines short of
        // address space. Wasm code then checks bounds explicitly.
        config.memory_reservation(settings.max_memory as u64);
        Engine::new(&config).map(|e| (e, AllocatorKind::OnDemand)).map_err(|e| Error::Engine(format!("{e:#}")))
    };
    match settings.allocator {
        Allocator::OnDemand => on_demand(),
        Allocator::Pooling => pooling_engine(settings, base_config(settings))
            .map(|e| (e, AllocatorKind::Pooling))
            .map_err(|e| Error::Engine(format!("the pooling allocator is unavailable: {e:#}"))),
        Allocator::Auto => match pooling_engine(settings, base_config(settings)) {
            Ok(engine) => Ok((engine, AllocatorKind::Pooling)),
            Err(e) => {
                tracing::warn!("pooling allocator unavailable ({e:#}); falling back to on-demand allocation");
                on_demand()
            }
        },
    }
}

/// Instances a worker's engine holds at once, in a thread or a process: the
/// worker's instance, and the one replacing it (or the probe's).
pub(crate) const SLOTS_PER_WORKER_ENGINE: u32 = 2;

/// Engines for `workers` thread workers, each with its own copy of the
/// compiled code (of either kind): `first` (whose engine has allocator
/// `kind`) and `workers - 1` more with the same settings, given the code
/// without compiling it again. With [`Allocator::Auto`] each engine falls
/// back to on-demand allocation on its own if its pool cannot be reserved;
/// code compiled for one allocator does not load into the other (their
/// memory reservations differ), so such an engine gets the code compiled
/// for it by `compile`, once. The kind returned is on-demand if any engine
/// uses it.
///
/// Why not one engine for all: creating and dropping instances goes
/// through the engine's shared state (its instance allocator's lock, its
/// type registry, reference counts), and with a fresh instance per task
/// two workers sharing an engine ran a fine-grained map about a third
/// slower than two with an engine each (docs/benchmarks.md).
pub(crate) fn engines_for_workers(
    first: (Engine, CompiledCode),
    compile: &dyn Fn(&Engine) -> Result<CompiledCode>,
    settings: &EngineSettings,
    kind: AllocatorKind,
    workers: usize,
) -> Result<(Vec<(Engine, CompiledCode)>, AllocatorKind)> {
    // The compiled code for each allocator kind met so far.
    let mut code: Vec<(AllocatorKind, Vec<u8>)> = Vec::new();
    if workers > 1 {
        code.push((kind, first.1.serialize().map_err(Error::Engine)?));
    }
    let mut overall = kind;
    let mut engines = Vec::with_capacity(workers);
    let code_kind = first.1.kind();
    engines.push(first);
    for _ in 1..workers {
        let (engine, this_kind) = create_engine(settings)?;
        if this_kind == AllocatorKind::OnDemand {
            overall = AllocatorKind::OnDemand;
        }
        let compiled = match code.iter().find(|(k, _)| *k == this_kind) {
            // SAFETY: this code was serialized above, in this process, by an
            // engine with the same settings and allocator; it is not read
            // from anywhere else.
            Some((_, bytes)) => unsafe { CompiledCode::deserialize(&engine, code_kind, bytes) }
                .map_err(|e| Error::Engine(format!("{e}, into a worker's engine")))?,
            None => {
                let compiled = compile(&engine)?;
                code.push((this_kind, compiled.serialize().map_err(Error::Engine)?));
                compiled
            }
        };
        engines.push((engine, compiled));
    }
    Ok((engines, overall))
}

fn base_config(settings: &EngineSettings) -> Config {
    let mut config = Config::new();
    // Backtraces (with function names) for traps.
    config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(crate::error::MAX_FRAMES));
    // Results that do not depend on the host CPU: Wasm leaves the sign and
    // payload of a NaN result to the hardware (x86-64 gives 0/0 a negative
    // NaN, aarch64 a positive one) and relaxed SIMD's rounding too. NaNs are
    // pinned by rewriting the module where their bits can be observed
    // (host/runtime/canonical_nans/), not by Cranelift's canonicalization after every
    // float operation; relaxed SIMD here (tests/all/cross_platform.rs).
    config.cranelift_nan_canonicalization(false);
    config.relaxed_simd_deterministic(true);
    // No GC proposal: wasmtime is built without its `gc` feature, and in
    // 48.0.8 a module with non-final function types then validates, but an
    // indirect call needing a subtype check at run time aborts the host
    // process (fixed upstream in 48.0.9, which this registry lacks;
    // tests/all/hostile/modules/subtype_check.wat).
    config.wasm_gc(false);
    // A trap's core dump gives the host the guest's globals, so that a
    // Rust guest overflowing the stack it keeps in linear memory is told
    // apart from any other out-of-bounds access.
    config.coredump_on_trap(true);
    config.max_wasm_stack(settings.max_stack);
    // Tasks never run on async fibers (the `async` feature comes with
    // WASI's implementation), but wasmtime requires their stacks to be at
    // least as large as the Wasm stack.
    config.async_stack_size(settings.max_stack.max(2 << 20));
    config.epoch_interruption(settings.epoch_interruption);
    config.consume_fuel(settings.consume_fuel);
    config
}

/// A slot's memory is reset, when its instance ends, by returning its pages
/// to the kernel (`madvise`), never in place from wasmtime's scan of the
/// pages written: in wasmtime 48.0.8 that scan (`PAGEMAP_SCAN`) skips a
/// written page the kernel has swapped out, which then neither is reset
/// nor returned, so the slot's next instance could read what the last one
/// left there (fixed upstream in 48.0.11, which the registry lacks;
/// `tests::a_slot_reused_after_its_pages_were_swapped_out_starts_clean`).
/// Instances reset in place between tasks use the host's own scan
/// (`fresh_state`), which counts swapped-out pages.
/// What one slot of a component pool holds at most: core instances,
/// memories and tables over all of a component's parts, as the limiter
/// allows them (`GuestLimiter::for_component`). componentize-py's CPython
/// component has 14 core instances and 2 tables (shared/research/python.md).
const COMPONENT_PARTS: u32 = crate::sandbox::limiter::COMPONENT_PARTS as u32;

fn pooling_engine(settings: &EngineSettings, mut config: Config) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let slots = settings.instance_slots.max(1);
    if settings.component {
        // Plus a worker's pristine instance, which never runs
        // (`fresh_state::whole_store`).
        let slots = slots + 1;
        pool.total_component_instances(slots)
            .total_core_instances(slots * COMPONENT_PARTS)
            .total_memories(slots * COMPONENT_PARTS)
            .total_tables(slots * COMPONENT_PARTS)
            .total_stacks(0)
            .max_core_instances_per_component(COMPONENT_PARTS)
            .max_memories_per_component(COMPONENT_PARTS)
            .max_tables_per_component(COMPONENT_PARTS)
            .max_memories_per_module(1)
            .max_tables_per_module(COMPONENT_PARTS)
            .max_memory_size(settings.max_memory)
            .table_elements(settings.max_table_elements);
    } else {
        // Two memories per instance: the module's, and the map in which its
        // writes mark their pages when instances are reset in place
        // (host/runtime/fresh_state/).
        pool.total_core_instances(slots)
            .total_memories(2 * slots)
            .total_tables(slots)
            .total_component_instances(0)
            .total_stacks(0)
            .max_memories_per_module(2)
            .max_tables_per_module(1)
            .max_memory_size(settings.max_memory)
            .table_elements(settings.max_table_elements);
    }
    // See above: no reset from wasmtime's page scan.
    pool.pagemap_scan(Enabled::No);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A digest of what decides the code `engine` compiles: wasmtime's
/// version, the engine's settings and the CPU features it targets. Two
/// engines with the same digest run a module identically; cluster ranks
/// compare theirs.
pub(crate) fn compatibility_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::runtime::swap_for_tests::{PAGE, page_out, require_swap};
    use wasmtime::{Instance, Module, Store};

    /// The pages the first instance writes: spread over the memory's first
    /// 4 MiB, where a reset in place would keep pages resident.
    const WRITTEN: [usize; 8] = [0, 1, 17, 100, 255, 511, 800, 1023];

    fn settings() -> EngineSettings {
        EngineSettings {
            allocator: Allocator::Pooling,
            instance_slots: 1,
            component: false,
            max_memory: 64 << 20,
            max_table_elements: 1000,
            max_stack: 512 << 10,
            epoch_interruption: false,
            consume_fuel: false,
        }
    }

    #[test]
    #[ignore = "needs swap turned on: .ci/swap runs it"]
    fn a_slot_reused_after_its_pages_were_swapped_out_starts_clean() {
        require_swap();
        let (engine, kind) = create_engine(&settings()).expect("a pooling engine");
        assert_eq!(kind, AllocatorKind::Pooling);
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 256))"#).unwrap();
        let module = Module::new(&engine, wasm).unwrap();
        // One slot: the second instance gets the first one's memory.
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let base = memory.data_ptr(&store);
        for page in WRITTEN {
            memory.data_mut(&mut store)[page * PAGE..(page + 1) * PAGE].fill(0xA5);
        }
        page_out(base, memory.data_size(&store), &WRITTEN);
        drop(store);

        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        assert_eq!(memory.data_ptr(&store), base, "the same slot");
        let leaked: Vec<usize> = WRITTEN
            .into_iter()
            .filter(|page| memory.data(&store)[page * PAGE..(page + 1) * PAGE].iter().any(|&b| b != 0))
            .collect();
        assert!(leaked.is_empty(), "pages {leaked:?} kept the previous instance's bytes");
    }
}
