//! A fresh state for every input of a task component without a new
//! instance: the worker keeps one instance and, between inputs, puts back
//! what a new instance has: every page of every linear memory the last
//! input may have written, and every mutable global of every core
//! instance, including the ones the component does not export.
//!
//! A component hides its core instances from the host; the handles come
//! from the store (`all_memories_and_globals`, added to the vendored
//! wasmtime: the list a core dump makes, without the trap that would stop
//! the component from being entered again). Which pages an input wrote
//! comes from the kernel's page tables (`dirty_pages.rs`): the host itself
//! writes into a component's memory (arguments, WASI's reads), which write
//! marks would miss. What a page held before the first input comes from a
//! **pristine** instance of the same component, made the same way in a
//! store of its own in which nothing runs after: its pages are the
//! component's initial image (mapped, not copied) plus what instantiation
//! wrote, which must equal, byte for byte, what the kept instance's
//! instantiation wrote.
//!
//! What a reset does not restore, the component must not change; it is
//! checked at load ([`check_component`]) and after each input:
//! - tables and dropped segments: no core module may contain an
//!   instruction that changes them (`table.set`, `table.grow`, `elem.drop`,
//!   …), as for core modules (`plan.rs`);
//! - the component instance's own state: no resources or asynchronous
//!   machinery of its own (only `canon lift`, `canon lower` and
//!   `resource.drop` of the host's resources);
//! - the memories' sizes: an instance whose memory grew is dropped;
//! - the handles the host holds for the guest (open files, streams): an
//!   input that made or closed one gets its instance dropped.
//!
//! Anything else that fails (a trap, an interrupted call) drops the
//! instance too: the next input gets a new one, as it would without resets.

use super::dirty_pages::DirtyPages;
use super::plan::changes_what_a_reset_keeps;
use super::{NotRestored, PAGE, WrittenPages, for_each_written_page};
use wasmtime::wasmparser::{CanonicalFunction, Operator, Parser, Payload};
use wasmtime::{AsContextMut, Global, Memory, Mutability, Val};

/// Why a component's instances cannot be reset in place, if they cannot:
/// the checks above that need only its bytes. Linear in their size.
pub(crate) fn check_component(bytes: &[u8]) -> Result<(), String> {
    let err = |e: wasmtime::wasmparser::BinaryReaderError| format!("it cannot be read: {e}");
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(err)? {
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader().map_err(err)?;
                while !reader.eof() {
                    let op: Operator<'_> = reader.read().map_err(err)?;
                    if let Some(what) = changes_what_a_reset_keeps(&op) {
                        return Err(format!("a core module of it uses {what}"));
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    if memory.map_err(err)?.shared {
                        return Err("a core module of it has a shared memory".into());
                    }
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                for function in reader {
                    match function.map_err(err)? {
                        CanonicalFunction::Lift { .. }
                        | CanonicalFunction::Lower { .. }
                        | CanonicalFunction::ResourceDrop { .. } => {}
                        other => {
                            let name = format!("{other:?}");
                            let name = name.split([' ', '{', '(']).next().unwrap_or("");
                            return Err(format!("it uses `canon {name}`, whose state a reset does not restore"));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every memory and every mutable global in `store`, in the order
/// wasmtime keeps them (the order their instances were made in), exported
/// or not: wasmtime's `all_memories_and_globals`, which the vendored copy
/// adds (vendor/README.md).
fn store_parts(mut store: impl AsContextMut) -> (Vec<Memory>, Vec<Global>) {
    let (memories, globals) = store.as_context_mut().all_memories_and_globals();
    let globals = globals.into_iter().filter(|global| global.ty(&store).mutability() == Mutability::Var).collect();
    (memories, globals)
}

/// One memory of the kept instance, and the same memory of the pristine one.
struct MemoryPair {
    memory: Memory,
    pristine: Memory,
    size: usize,
}

/// The storage of a store's numeric mutable globals, with the bytes each
/// held: restoring 500 of CPython's globals this way takes a
/// microsecond, against 8 through `Global::set` and its type checks.
struct RawGlobals {
    /// One of these globals, to check the store against.
    first: Option<Global>,
    storage: Vec<(std::ptr::NonNull<[u8; 16]>, [u8; 16])>,
}

// SAFETY: the pointers are dereferenced only by `StoreSnapshot::restore`,
// which holds the store they point into mutably; the store itself may be
// sent to another thread, and the snapshot goes with it.
unsafe impl Send for RawGlobals {}

/// A kept component instance's state before its first input, to return
/// to after each: the pristine instance's, which it equals.
pub(crate) struct StoreSnapshot {
    memories: Vec<MemoryPair>,
    /// The numeric globals' storage and bytes, written back as they are.
    raw_globals: RawGlobals,
    /// The reference globals' values, set back through wasmtime's API.
    globals: Vec<(Global, Val)>,
    scanner: &'static DirtyPages,
    /// The count of handles made and closed for the guest then.
    handle_changes: u64,
}

impl StoreSnapshot {
    /// The snapshot of `store`, whose component instance has run no input,
    /// against `pristine`, a store holding an instance of the same
    /// component made the same way, in which nothing ran. `handle_changes`
    /// is [`ComponentWasi::handle_changes`](crate::sandbox::wasi::ComponentWasi::handle_changes)
    /// in `store`. Fails on a system without the page scan, or if the two
    /// instances differ in shape or in a single byte of memory (their
    /// instantiation must be deterministic): every page either wrote must
    /// be the same in both, so that the pristine pages are the kept
    /// instance's state before its first input.
    pub(crate) fn take(
        mut store: impl AsContextMut,
        mut pristine: impl AsContextMut,
        handle_changes: u64,
    ) -> Result<StoreSnapshot, NotRestored> {
        let scanner = DirtyPages::get().ok_or_else(|| NotRestored("this system has no page scan".into()))?;
        let (memories, globals) = store_parts(&mut store);
        let (pristine_memories, pristine_globals) = store_parts(&mut pristine);
        if memories.len() != pristine_memories.len() || globals.len() != pristine_globals.len() {
            return Err(NotRestored("two instances of the component differ in shape".into()));
        }
        let mut pairs = Vec::with_capacity(memories.len());
        for (memory, pristine_memory) in memories.into_iter().zip(pristine_memories) {
            let size = memory.data_size(&store);
            if pristine_memory.data_size(&pristine) != size {
                return Err(NotRestored("two instances of the component differ in memory size".into()));
            }
            // The pages instantiation wrote, in either instance.
            let mut pages = Vec::new();
            for_each_written_page(&mut store, memory, &mut WrittenPages::Scan(scanner), |_, start| pages.push(start))?;
            for_each_written_page(&mut pristine, pristine_memory, &mut WrittenPages::Scan(scanner), |_, start| {
                pages.push(start)
            })?;
            let (kept, first) = (memory.data(&store), pristine_memory.data(&pristine));
            if let Some(start) =
                pages.into_iter().find(|&start| kept[start..start + PAGE] != first[start..start + PAGE])
            {
                return Err(NotRestored(format!(
                    "two instances of the component differ at byte {start:#x} of a memory: its instantiation is \
                     not deterministic"
                )));
            }
            pairs.push(MemoryPair { memory, pristine: pristine_memory, size });
        }
        let mut values = Vec::new();
        let mut raw = RawGlobals { first: None, storage: Vec::with_capacity(globals.len()) };
        for (global, pristine_global) in globals.into_iter().zip(pristine_globals) {
            let value = global.get(&mut store);
            let same = match (value, pristine_global.get(&mut pristine)) {
                (Val::I32(a), Val::I32(b)) => a == b,
                (Val::I64(a), Val::I64(b)) => a == b,
                (Val::F32(a), Val::F32(b)) => a == b,
                (Val::F64(a), Val::F64(b)) => a == b,
                (Val::V128(a), Val::V128(b)) => a.as_u128() == b.as_u128(),
                // References point into their own store: not comparable.
                (Val::FuncRef(a), Val::FuncRef(b)) => a.is_some() == b.is_some(),
                (Val::ExternRef(a), Val::ExternRef(b)) => a.is_some() == b.is_some(),
                _ => false,
            };
            if !same {
                return Err(NotRestored("two instances of the component differ in a global".into()));
            }
            if matches!(value, Val::I32(_) | Val::I64(_) | Val::F32(_) | Val::F64(_) | Val::V128(_)) {
                // SAFETY: a mutable global of `store` (`store_parts` keeps
                // only those) of a numeric type, whose bytes are read here
                // to be written back by `restore` into this same store.
                let storage = unsafe { global.raw_storage(&store) };
                // SAFETY: valid now, as above; read while nothing runs.
                let bytes = unsafe { storage.read() };
                raw.first.get_or_insert(global);
                raw.storage.push((storage, bytes));
            } else {
                values.push((global, value));
            }
        }
        Ok(StoreSnapshot { memories: pairs, raw_globals: raw, globals: values, scanner, handle_changes })
    }

    /// Puts every memory and global of `store` back as they were when the
    /// snapshot was taken: each page written since, from `pristine`.
    /// `handle_changes` is the count of handles made and closed now.
    pub(crate) fn restore(
        &mut self,
        mut store: impl AsContextMut,
        pristine: impl wasmtime::AsContext,
        handle_changes: u64,
    ) -> Result<(), NotRestored> {
        // A handle made or closed, even one for another (stdout closed,
        // stderr opened in its place), would leave the guest's record of
        // its handles out of step with the host's.
        if handle_changes != self.handle_changes {
            return Err(NotRestored("the input made or closed WASI handles (files, streams)".into()));
        }
        for pair in &self.memories {
            let size = pair.memory.data_size(&store);
            if size != pair.size {
                return Err(NotRestored(format!("a memory grew from {} to {size} bytes", pair.size)));
            }
            let source = pair.pristine.data(&pristine);
            for_each_written_page(&mut store, pair.memory, &mut WrittenPages::Scan(self.scanner), |data, start| {
                data[start..start + PAGE].copy_from_slice(&source[start..start + PAGE]);
            })?;
        }
        if let Some(first) = self.raw_globals.first {
            // Panics if `store` is not the store the snapshot was taken of
            // (wasmtime checks a handle's store), before anything is written.
            first.ty(&store);
        }
        for (storage, bytes) in &self.raw_globals.storage {
            // SAFETY: `store` is the snapshot's own (checked above) and holds
            // the instances that define these globals (a snapshot lives
            // beside its store, `ResetSlot`); each is a mutable numeric
            // global and gets back the bytes read from it; `store` is
            // borrowed mutably, so no guest code runs meanwhile.
            unsafe { storage.write(*bytes) };
        }
        for (global, value) in &self.globals {
            global.set(&mut store, *value).map_err(|e| NotRestored(format!("{e:#}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_component;

    /// A component of one core module with `body` as its function's code
    /// and `canon` as further component fields.
    fn component(body: &str, canon: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component
  (core module $m
    (table 1 funcref)
    (memory 1)
    (func (export "f") {body}))
  (core instance $i (instantiate $m))
  {canon})"#
        ))
        .expect("the test component assembles")
    }

    #[test]
    fn a_component_that_changes_only_memories_and_globals_can_be_reset() {
        assert_eq!(check_component(&component("i32.const 0 i32.const 1 i32.store", "")), Ok(()));
    }

    #[test]
    fn a_component_that_changes_what_a_reset_keeps_cannot_be_reset() {
        for (body, what) in [
            ("i32.const 0 ref.null func table.set 0", "an instruction that changes a table"),
            ("ref.null func i32.const 1 table.grow 0 drop", "an instruction that changes a table"),
        ] {
            let why = check_component(&component(body, "")).expect_err(body);
            assert!(why.contains(what), "{body}: {why}");
        }
        let own_resource = r#"(type $r (resource (rep i32)))
  (core func (canon resource.new $r))"#;
        let why = check_component(&component("", own_resource)).expect_err("resource.new");
        assert!(why.contains("canon ResourceNew"), "{why}");
    }

    #[test]
    fn a_nested_core_module_is_checked_too() {
        let nested = wat::parse_str(
            r#"(component
  (component $inner
    (core module $m (table 1 funcref) (func (export "f") i32.const 0 ref.null func table.set 0)))
  (instance (instantiate $inner)))"#,
        )
        .unwrap();
        assert!(check_component(&nested).is_err());
    }

    #[test]
    fn bytes_that_are_no_component_cannot_be_reset() {
        assert!(check_component(b"\0asm\x0d\0\x01\0garbage").is_err());
    }
}
