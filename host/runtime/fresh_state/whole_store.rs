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
//! marks would miss. What a page held before it was first written comes
//! from a **pristine** instance of the same component, in a store of its
//! own in which nothing ever runs: its pages are the component's initial
//! image, mapped, never copied.
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
//!   input that leaves their number changed gets its instance dropped.
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

/// One memory's state before the first input.
struct MemoryState {
    memory: Memory,
    /// The same memory in the pristine instance.
    pristine: Memory,
    size: usize,
    /// The pages written before the first input (instantiation), as they
    /// were then, by page number (ascending).
    written: Vec<(u32, Box<[u8]>)>,
}

/// A kept component instance's state before its first input, to return
/// to after each.
pub(crate) struct StoreSnapshot {
    memories: Vec<MemoryState>,
    globals: Vec<(Global, Val)>,
    scanner: &'static DirtyPages,
    /// How many handles the host holds for the guest.
    handles: usize,
}

impl StoreSnapshot {
    /// The snapshot of `store`, whose component instance has run no input,
    /// against `pristine`, a store holding an instance of the same
    /// component in which nothing ran. `handles` is the number of handles
    /// the host holds for the guest in `store`. Fails on a system without
    /// the page scan, or if the two instances differ in shape or in what
    /// instantiation wrote (it must be deterministic).
    pub(crate) fn take(
        mut store: impl AsContextMut,
        mut pristine: impl AsContextMut,
        handles: usize,
    ) -> Result<StoreSnapshot, NotRestored> {
        let scanner = DirtyPages::get().ok_or_else(|| NotRestored("this system has no page scan".into()))?;
        let (memories, globals) = store_parts(&mut store);
        let (pristine_memories, pristine_globals) = store_parts(&mut pristine);
        if memories.len() != pristine_memories.len() || globals.len() != pristine_globals.len() {
            return Err(NotRestored("two instances of the component differ in shape".into()));
        }
        let mut states = Vec::with_capacity(memories.len());
        for (memory, pristine_memory) in memories.into_iter().zip(pristine_memories) {
            let size = memory.data_size(&store);
            if pristine_memory.data_size(&pristine) != size {
                return Err(NotRestored("two instances of the component differ in memory size".into()));
            }
            let mut written: Vec<(u32, Box<[u8]>)> = Vec::new();
            for_each_written_page(&mut store, memory, &mut WrittenPages::Scan(scanner), |data, start| {
                written.push(((start / PAGE) as u32, data[start..start + PAGE].into()));
            })?;
            written.sort_unstable_by_key(|(page, _)| *page);
            // Every page the pristine instance's instantiation wrote must
            // be one this instance's wrote, with the same bytes; else the
            // pristine pages are not what a new instance starts from.
            let mut differs = None;
            for_each_written_page(&mut pristine, pristine_memory, &mut WrittenPages::Scan(scanner), |data, start| {
                let page = (start / PAGE) as u32;
                let same = written
                    .binary_search_by_key(&page, |(p, _)| *p)
                    .is_ok_and(|i| written[i].1[..] == data[start..start + PAGE]);
                if !same {
                    differs.get_or_insert(page);
                }
            })?;
            if let Some(page) = differs {
                return Err(NotRestored(format!(
                    "instantiating the component twice wrote page {page} differently: its instantiation is not \
                     deterministic"
                )));
            }
            states.push(MemoryState { memory, pristine: pristine_memory, size, written });
        }
        let globals = globals.into_iter().map(|global| (global, global.get(&mut store))).collect();
        Ok(StoreSnapshot { memories: states, globals, scanner, handles })
    }

    /// Puts every memory and global of `store` back as they were when the
    /// snapshot was taken, reading unwritten pages from `pristine`.
    /// `handles` is the number of handles the host now holds for the guest.
    pub(crate) fn restore(
        &mut self,
        mut store: impl AsContextMut,
        pristine: impl wasmtime::AsContext,
        handles: usize,
    ) -> Result<(), NotRestored> {
        if handles != self.handles {
            return Err(NotRestored(format!(
                "the input left {handles} handles open where the instance started with {}",
                self.handles
            )));
        }
        for state in &self.memories {
            let size = state.memory.data_size(&store);
            if size != state.size {
                return Err(NotRestored(format!("a memory grew from {} to {size} bytes", state.size)));
            }
            let source = state.pristine.data(&pristine);
            let written = &state.written;
            for_each_written_page(&mut store, state.memory, &mut WrittenPages::Scan(self.scanner), |data, start| {
                let page = (start / PAGE) as u32;
                let target = &mut data[start..start + PAGE];
                match written.binary_search_by_key(&page, |(p, _)| *p) {
                    Ok(i) => target.copy_from_slice(&written[i].1),
                    Err(_) => target.copy_from_slice(&source[start..start + PAGE]),
                }
            })?;
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
