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
mod whole_store;
mod write_marks;

pub(crate) use plan::{ResetPlan, prepare};
pub(crate) use whole_store::{StoreSnapshot, check_component};
pub(crate) use write_marks::{MAP_EXPORT, map_pages};

/// The size of a WebAssembly page, in bytes.
pub(crate) const WASM_PAGE: usize = 65536;

use dirty_pages::DirtyPages;
use std::sync::Arc;
use wasmtime::{AsContextMut, Global, Instance, Memory, Val};

/// The granule of the images below and of a reset: a mark's
/// (`write_marks::PAGE_SHIFT`), a divisor of every host page size (the
/// kernel's scan reports whole host pages, each reset as several granules).
const PAGE: usize = 1 << write_marks::PAGE_SHIFT;

/// A linear memory's initial contents, by page: the pages the module's
/// data segments write. Every other page starts as zeros.
pub(crate) struct InitialImage {
    /// By page number: 0 for a page of zeros, else 1 + its index in `pages`.
    index: Vec<u32>,
    pages: Vec<Box<[u8]>>,
}

impl InitialImage {
    /// The image `plan`'s data segments make, in time linear in their size
    /// and in the number of granules below the last one they write (at
    /// most 2^22 for a 32-bit memory).
    pub(crate) fn new(plan: &ResetPlan) -> InitialImage {
        let mut image = InitialImage { index: Vec::new(), pages: Vec::new() };
        for segment in &plan.segments {
            let mut at = segment.offset;
            let mut bytes = segment.bytes.as_slice();
            // A segment past 4 GiB cannot be instantiated: nothing to keep.
            while !bytes.is_empty() && at < 1 << 32 {
                let page = (at / PAGE as u64) as usize;
                let within = (at % PAGE as u64) as usize;
                let n = bytes.len().min(PAGE - within);
                if image.index.len() <= page {
                    image.index.resize(page + 1, 0);
                }
                if image.index[page] == 0 {
                    image.pages.push(vec![0; PAGE].into_boxed_slice());
                    image.index[page] = image.pages.len() as u32;
                }
                let contents = &mut image.pages[image.index[page] as usize - 1];
                contents[within..within + n].copy_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                at += n as u64;
            }
        }
        image
    }

    /// Page `page`'s initial contents, unless it starts as zeros.
    fn page(&self, page: usize) -> Option<&[u8]> {
        match self.index.get(page) {
            Some(&i) if i > 0 => self.pages.get(i as usize - 1).map(|contents| &contents[..]),
            _ => None,
        }
    }
}

/// An instance's state before its first task, to return to after each.
pub(crate) struct Snapshot {
    image: Arc<InitialImage>,
    /// The pages written by the start function, `_initialize` or the init
    /// task, as they were then, by page number (ascending).
    written: Vec<(u32, Box<[u8]>)>,
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

/// Why an instance cannot be put back: it must be dropped.
#[derive(Debug)]
pub(crate) struct NotRestored(pub String);

impl Snapshot {
    /// Takes the snapshot of `instance`, which has run no task yet. `None`
    /// if its writes leave no marks and this system has no page scanner.
    pub(crate) fn take(
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
        let mut written = Vec::new();
        for_each_written_page(&mut store, memory, &mut written_pages, |data, start| {
            written.push(((start / PAGE) as u32, data[start..start + PAGE].into()));
        })?;
        written.sort_unstable_by_key(|(page, _)| *page);
        Ok(Some(Snapshot { image, written, size, globals, written_pages }))
    }

    /// Puts `memory` and the globals back as they were when the snapshot
    /// was taken.
    pub(crate) fn restore(&mut self, mut store: impl AsContextMut, memory: Memory) -> Result<(), NotRestored> {
        let size = memory.data_size(&store);
        if size != self.size {
            return Err(NotRestored(format!("its memory grew from {} to {size} bytes", self.size)));
        }
        let Snapshot { written, image, written_pages, .. } = self;
        for_each_written_page(&mut store, memory, written_pages, |data, start| {
            let page = start / PAGE;
            let target = &mut data[start..start + PAGE];
            let contents = match written.binary_search_by_key(&(page as u32), |(p, _)| *p) {
                Ok(i) => Some(&written[i].1[..]),
                Err(_) => image.page(page),
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
    let (code, plan) = prepare(wasm, Some(1 << 30), false);
    let Ok(plan) = plan else {
        assert_eq!(code, wasm, "a module without a plan is compiled as it is");
        return;
    };
    InitialImage::new(&plan);
    if Validator::new_with_features(WasmFeatures::all()).validate_all(wasm).is_ok()
        && let Err(e) = Validator::new_with_features(WasmFeatures::all()).validate_all(&code)
    {
        panic!("a valid module was made invalid: {e}");
    }
}

#[cfg(test)]
mod tests;
