//! A fresh state for every task without a new instance: the worker keeps
//! one instance and, between tasks, puts back exactly what a new instance
//! would have: every page of linear memory the last task may have changed
//! (found in the kernel's page tables, see `dirty_pages.rs`) and every
//! mutable global. Creating and dropping an instance costs several
//! microseconds (slot allocation, scanning and resetting the whole memory,
//! registries); a reset costs one page-table scan and a copy of the pages
//! the task wrote.
//!
//! What a reset does not restore, the module must not change: tables
//! (`table.set`, `table.grow`, …), dropped segments (`data.drop`,
//! `elem.drop`) and the memory's size. A module whose code can change the
//! first two is never reset (`plan.rs` says why); an instance whose memory
//! grew is dropped and the next task gets a new one. Where the kernel has
//! no page scanner (Windows, macOS, Linux before 6.7) every task gets a new
//! instance, as before.
//!
//! The state a task starts from is the state after the module's start
//! function, `_initialize` and the pool's init task ran once in the
//! instance: what a new instance has before its first task.

pub(crate) mod dirty_pages;
mod plan;

pub(crate) use plan::{ResetPlan, prepare};

use dirty_pages::DirtyPages;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::{AsContextMut, Global, Instance, Memory, Val};

/// The granule of the images below (a divisor of every host page size).
const PAGE: usize = 4096;

/// A linear memory's initial contents, by page: the pages the module's
/// data segments write. Every other page starts as zeros.
pub(crate) struct InitialImage {
    pages: HashMap<u64, Box<[u8]>>,
}

impl InitialImage {
    /// The image `plan`'s data segments make, in time linear in their size.
    pub fn new(plan: &ResetPlan) -> InitialImage {
        let mut pages: HashMap<u64, Box<[u8]>> = HashMap::new();
        for segment in &plan.segments {
            let mut at = segment.offset;
            let mut bytes = segment.bytes.as_slice();
            while !bytes.is_empty() {
                let page = at / PAGE as u64;
                let within = (at % PAGE as u64) as usize;
                let n = bytes.len().min(PAGE - within);
                let contents = pages.entry(page).or_insert_with(|| vec![0; PAGE].into_boxed_slice());
                contents[within..within + n].copy_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                let Some(next) = at.checked_add(n as u64) else { break };
                at = next;
            }
        }
        InitialImage { pages }
    }
}

/// An instance's state before its first task, to return to after each.
pub(crate) struct Snapshot {
    image: Arc<InitialImage>,
    /// The pages that may differ from `image` when the snapshot was taken
    /// (written by the start function, `_initialize` or the init task),
    /// with their contents then.
    written: HashMap<u64, Box<[u8]>>,
    /// The memory's size in bytes.
    size: usize,
    globals: Vec<(Global, Val)>,
    scanner: &'static DirtyPages,
}

/// Why an instance cannot be put back: it must be dropped.
#[derive(Debug)]
pub(crate) struct NotRestored(pub String);

impl Snapshot {
    /// Takes the snapshot of `instance`, which has run no task yet. `None`
    /// if this system has no page scanner.
    pub fn take(
        mut store: impl AsContextMut,
        instance: &Instance,
        memory: Memory,
        plan: &ResetPlan,
        image: Arc<InitialImage>,
    ) -> Result<Option<Snapshot>, NotRestored> {
        let Some(scanner) = DirtyPages::get() else { return Ok(None) };
        let mut globals = Vec::with_capacity(plan.globals.len());
        for name in &plan.globals {
            let global = instance
                .get_global(&mut store, name)
                .ok_or_else(|| NotRestored(format!("the instance has no global exported as {name}")))?;
            globals.push((global, global.get(&mut store)));
        }
        let data = memory.data(&store);
        let mut written = HashMap::new();
        let mut outside = None;
        scanner
            .for_each(data, |run| {
                for start in run.step_by(PAGE) {
                    match data.get(start..start + PAGE) {
                        Some(contents) => _ = written.insert((start / PAGE) as u64, contents.into()),
                        None => outside = Some(start),
                    }
                }
            })
            .map_err(|e| NotRestored(e.0))?;
        if let Some(start) = outside {
            return Err(NotRestored(format!("a page at {start:#x} reaches past the memory's end")));
        }
        Ok(Some(Snapshot { image, written, size: data.len(), globals, scanner }))
    }

    /// Puts `memory` and the globals back as they were when the snapshot
    /// was taken.
    pub fn restore(&self, mut store: impl AsContextMut, memory: Memory) -> Result<(), NotRestored> {
        let data = memory.data_mut(&mut store);
        if data.len() != self.size {
            return Err(NotRestored(format!("its memory grew from {} to {} bytes", self.size, data.len())));
        }
        let range: *const [u8] = data;
        let mut outside = None;
        self.scanner
            .for_each(range, |run| {
                for start in run.step_by(PAGE) {
                    let page = (start / PAGE) as u64;
                    let Some(target) = data.get_mut(start..start + PAGE) else {
                        outside = Some(start);
                        continue;
                    };
                    match self.written.get(&page).or_else(|| self.image.pages.get(&page)) {
                        Some(contents) => target.copy_from_slice(contents),
                        None => target.fill(0),
                    }
                }
            })
            .map_err(|e| NotRestored(e.0))?;
        if let Some(start) = outside {
            return Err(NotRestored(format!("a page at {start:#x} reaches past the memory's end")));
        }
        for (global, value) in &self.globals {
            global.set(&mut store, *value).map_err(|e| NotRestored(format!("{e:#}")))?;
        }
        Ok(())
    }
}

/// Fuzzing entry (`fuzz/fuzz_targets/reset_plan.rs`): any bytes either
/// get no plan (and stay as they are) or, if they are a valid module, a
/// valid module with the same exports plus those of its mutable globals,
/// and an image built in time linear in the data.
#[doc(hidden)]
pub fn prepare_for_fuzzing(wasm: &[u8]) {
    use wasmtime::wasmparser::{Validator, WasmFeatures};
    let (code, plan) = prepare(wasm);
    let Ok(plan) = plan else {
        assert_eq!(code, wasm, "a module without a plan is compiled as it is");
        return;
    };
    InitialImage::new(&plan);
    let valid = |bytes: &[u8]| Validator::new_with_features(WasmFeatures::all()).validate_all(bytes).is_ok();
    if valid(wasm) {
        assert!(valid(&code), "a valid module was made invalid by exporting its globals");
    }
}

#[cfg(test)]
mod tests;
