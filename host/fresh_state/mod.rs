//! A fresh state for every task without a new instance: the worker keeps
//! one instance and, between tasks, puts back exactly what a new instance
//! would have: every page of linear memory the last task may have written
//! and every mutable global. Creating and dropping an instance costs
//! several microseconds (slot allocation, resetting the whole memory,
//! registries); a reset copies back the pages the task wrote.
//!
//! Which pages those are comes from marks the module's own writes leave in
//! a map it cannot address (`write_marks.rs`: a load-time rewrite), or, for
//! modules whose imported functions write into their memory (WASI), from
//! the kernel's page tables (`dirty_pages.rs`: Linux's `PAGEMAP_SCAN`).
//!
//! What a reset does not restore, the module must not change: tables
//! (`table.set`, `table.grow`, …), dropped segments (`data.drop`,
//! `elem.drop`) and the memory's size. A module whose code can change the
//! first two is never reset (`plan.rs` says why); an instance whose memory
//! grew is dropped and the next task gets a new one. A module without
//! marks on a system without the scan gets a new instance for every task.
//!
//! The state a task starts from is the state after the module's start
//! function, `_initialize` and the pool's init task ran once in the
//! instance: what a new instance has before its first task.

pub(crate) mod dirty_pages;
mod plan;
mod write_marks;

pub(crate) use plan::{ResetPlan, prepare};
pub(crate) use write_marks::MAP_EXPORT;

use dirty_pages::DirtyPages;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::{AsContextMut, Global, Instance, Memory, Val};

/// The granule of the images below (a divisor of every host page size).
const PAGE: usize = 4096;

/// A linear memory's initial contents, by page: the pages the module's
/// data segments write. Every other page starts as zeros.
pub(crate) struct InitialImage {
    /// Each page's contents, by page number.
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

    /// Page `page`'s initial contents, unless it starts as zeros.
    fn page(&self, page: u64) -> Option<&[u8]> {
        self.pages.get(&page).map(|contents| &contents[..])
    }
}

/// An instance's state before its first task, to return to after each.
pub(crate) struct Snapshot {
    /// Every page's contents then, by page number.
    pages: Vec<Contents>,
    /// The pages written by the start function, `_initialize` or the
    /// init task, as they were then.
    written: Vec<Box<[u8]>>,
    image: Arc<InitialImage>,
    /// The memory's size in bytes.
    size: usize,
    globals: Vec<(Global, Val)>,
    written_pages: WrittenPages,
}

/// How a reset finds the pages a task wrote.
enum WrittenPages {
    /// The marks the module's writes leave in this map (see `write_marks.rs`),
    /// and room to collect them.
    Marks { map: Memory, marked: Vec<u32> },
    /// The kernel's page tables.
    Scan(&'static DirtyPages),
}

/// Where a page's contents at the snapshot are kept.
#[derive(Clone, Copy)]
enum Contents {
    Zeros,
    Image,
    /// An index into [`Snapshot::written`].
    Written(u32),
}

/// Why an instance cannot be put back: it must be dropped.
#[derive(Debug)]
pub(crate) struct NotRestored(pub String);

impl Snapshot {
    /// Takes the snapshot of `instance`, which has run no task yet. `None`
    /// if its writes leave no marks and this system has no page scanner.
    pub fn take(
        mut store: impl AsContextMut,
        instance: &Instance,
        memory: Memory,
        plan: &ResetPlan,
        image: Arc<InitialImage>,
    ) -> Result<Option<Snapshot>, NotRestored> {
        let mut written_pages = if plan.marks {
            let map = marks_map(&mut store, instance)?;
            WrittenPages::Marks { map, marked: Vec::new() }
        } else {
            match DirtyPages::get() {
                Some(scanner) => WrittenPages::Scan(scanner),
                None => return Ok(None),
            }
        };
        let mut globals = Vec::with_capacity(plan.globals.len());
        for name in &plan.globals {
            let global = instance
                .get_global(&mut store, name)
                .ok_or_else(|| NotRestored(format!("the instance has no global exported as {name}")))?;
            globals.push((global, global.get(&mut store)));
        }
        // What the start function, `_initialize` and the init task wrote.
        let size = memory.data_size(&store);
        let mut pages: Vec<Contents> = (0..(size / PAGE) as u64)
            .map(|page| if image.page(page).is_some() { Contents::Image } else { Contents::Zeros })
            .collect();
        let mut written = Vec::new();
        for_each_written_page(&mut store, memory, &mut written_pages, |data, start| {
            if let Some(contents) = pages.get_mut(start / PAGE) {
                *contents = Contents::Written(written.len() as u32);
                written.push(data[start..start + PAGE].into());
            }
        })?;
        Ok(Some(Snapshot { pages, written, image, size, globals, written_pages }))
    }

    /// Puts `memory` and the globals back as they were when the snapshot
    /// was taken.
    pub fn restore(&mut self, mut store: impl AsContextMut, memory: Memory) -> Result<(), NotRestored> {
        let size = memory.data_size(&store);
        if size != self.size {
            return Err(NotRestored(format!("its memory grew from {} to {size} bytes", self.size)));
        }
        let Snapshot { pages, written, image, written_pages, .. } = self;
        for_each_written_page(&mut store, memory, written_pages, |data, start| {
            let page = start / PAGE;
            let target = &mut data[start..start + PAGE];
            let contents = match pages.get(page) {
                Some(Contents::Written(i)) => written.get(*i as usize).map(|c| &c[..]),
                Some(Contents::Image) => image.page(page as u64),
                _ => None,
            };
            match contents {
                Some(contents) => target.copy_from_slice(contents),
                None => target.fill(0),
            }
        })?;
        for (global, value) in &self.globals {
            global.set(&mut store, *value).map_err(|e| NotRestored(format!("{e:#}")))?;
        }
        Ok(())
    }
}

/// The mark map of an instance whose writes mark their pages.
fn marks_map(store: impl AsContextMut, instance: &Instance) -> Result<Memory, NotRestored> {
    instance
        .get_memory(store, write_marks::MAP_EXPORT)
        .ok_or_else(|| NotRestored(format!("the instance has no memory exported as {}", write_marks::MAP_EXPORT)))
}

/// Marks the pages of `start .. start + len` of the memory as written (for
/// what the host writes there itself).
pub(crate) fn mark_written(mut store: impl AsContextMut, map: Memory, start: usize, len: usize) {
    if len == 0 {
        return;
    }
    let data = map.data_mut(&mut store);
    let (first, last) = (start >> write_marks::PAGE_SHIFT, (start + len - 1) >> write_marks::PAGE_SHIFT);
    if let Some(marks) = data.get_mut(first..=last.min(data.len().saturating_sub(1))) {
        marks.fill(1);
    }
}

/// The map of an instance whose writes mark their pages, if `plan` says
/// they do.
pub(crate) fn marks_of(store: impl AsContextMut, instance: &Instance, plan: &ResetPlan) -> Option<Memory> {
    if plan.marks { marks_map(store, instance).ok() } else { None }
}

/// Adds the pages (below `pages`) marked in `marks`, which start at page
/// `at`, to `marked`, and clears the marks.
fn collect_marks(marks: &mut [u8], at: usize, pages: usize, marked: &mut Vec<u32>) {
    for (i, mark) in marks.iter_mut().enumerate() {
        if *mark != 0 && at + i < pages {
            marked.push((at + i) as u32);
        }
        *mark = 0;
    }
}

/// Calls `found(memory's bytes, offset)` for every [`PAGE`] of `memory`
/// that may have been written since the last call, clearing the marks.
fn for_each_written_page(
    mut store: impl AsContextMut,
    memory: Memory,
    written_pages: &mut WrittenPages,
    mut found: impl FnMut(&mut [u8], usize),
) -> Result<(), NotRestored> {
    match written_pages {
        WrittenPages::Marks { map, marked } => {
            let pages = memory.data_size(&store) / PAGE;
            marked.clear();
            let marks = map.data_mut(&mut store);
            // Only pages in memory can be marked; clear one more to be safe.
            let end = (pages + 1).min(marks.len());
            let marks = &mut marks[..end];
            // Eight marks at a time: most are clear.
            let mut words = marks.chunks_exact_mut(8);
            let mut at = 0;
            for word in &mut words {
                if u64::from_ne_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]]) != 0 {
                    collect_marks(word, at, pages, marked);
                }
                at += 8;
            }
            collect_marks(words.into_remainder(), at, pages, marked);
            let data = memory.data_mut(&mut store);
            for &page in marked.iter() {
                found(data, page as usize * PAGE);
            }
            Ok(())
        }
        WrittenPages::Scan(scanner) => {
            let data = memory.data_mut(&mut store);
            let range: *const [u8] = data;
            let mut outside = None;
            scanner
                .for_each(range, |run| {
                    for start in run.step_by(PAGE) {
                        if start + PAGE <= data.len() {
                            found(data, start);
                        } else {
                            outside = Some(start);
                        }
                    }
                })
                .map_err(|e| NotRestored(e.0))?;
            match outside {
                Some(start) => Err(NotRestored(format!("a page at {start:#x} reaches past the memory's end"))),
                None => Ok(()),
            }
        }
    }
}

/// Fuzzing entry (`fuzz/fuzz_targets/reset_plan.rs`): any bytes either
/// get no plan (and stay as they are) or, if they are a valid module, a
/// valid module (its writes marking their pages, its mutable globals
/// exported), and an image built in time linear in the data.
#[doc(hidden)]
pub fn prepare_for_fuzzing(wasm: &[u8]) {
    use wasmtime::wasmparser::{Validator, WasmFeatures};
    let (code, plan) = prepare(wasm, Some(1 << 30));
    let Ok(plan) = plan else {
        assert_eq!(code, wasm, "a module without a plan is compiled as it is");
        return;
    };
    InitialImage::new(&plan);
    if Validator::new_with_features(WasmFeatures::all()).validate_all(wasm).is_ok() {
        if let Err(e) = Validator::new_with_features(WasmFeatures::all()).validate_all(&code) {
            panic!("a valid module was made invalid: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
