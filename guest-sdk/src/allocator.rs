//! The SDK's global allocator for Wasm guests (feature `allocator`, on by
//! default): dlmalloc that serves its first megabyte from a zeroed arena
//! inside the module's initial memory before it grows memory.
//!
//! Why: the standard library's allocator on `wasm32` gets every byte from
//! `memory.grow`, so every task that allocates (decoding its arguments
//! does) grows its memory. The host gives each task a fresh instance, and
//! a fresh instance of a memory that grew must first be shrunk back to the
//! module's initial size with `mprotect`, which on Linux interrupts every
//! other core running the pool (a TLB shootdown). Serving small tasks from
//! the arena keeps their memory at its initial size, so the next task's
//! instance is ready without any system call on its memory's protection.
//!
//! The arena lives in the module's `.bss`, so it costs nothing in the
//! `.wasm` file and is only touched as far as it is used. A crate that
//! installs its own `#[global_allocator]` turns this off with
//! `default-features = false`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use dlmalloc::{Allocator, Dlmalloc};

/// Size of the arena in the initial memory, in bytes.
const ARENA_LEN: usize = 1 << 20;
/// Wasm page size.
const PAGE: usize = 64 * 1024;

#[repr(C, align(65536))]
struct Arena(UnsafeCell<[u8; ARENA_LEN]>);

// SAFETY: wasm32 guests run on one thread; the arena is handed to dlmalloc
// once and only dlmalloc touches it afterwards.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_LEN]));

/// dlmalloc's source of memory: the arena once, then `memory.grow`.
struct ArenaThenGrow {
    arena_given: UnsafeCell<bool>,
}

// SAFETY: single-threaded wasm32 (see `Arena`).
unsafe impl Send for ArenaThenGrow {}

unsafe impl Allocator for ArenaThenGrow {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: single-threaded; nothing else reads or writes the flag.
        let arena_given = unsafe { &mut *self.arena_given.get() };
        if !*arena_given && size <= ARENA_LEN {
            *arena_given = true;
            return (ARENA.0.get().cast::<u8>(), ARENA_LEN, 0);
        }
        let pages = size.div_ceil(PAGE);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return (core::ptr::null_mut(), 0, 0);
        }
        ((previous * PAGE) as *mut u8, pages * PAGE, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        core::ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        // The arena is `.bss` of a fresh instance; grown pages are zero.
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// The global allocator the SDK installs on `wasm32`.
pub struct GuestAllocator(UnsafeCell<Dlmalloc<ArenaThenGrow>>);

// SAFETY: single-threaded wasm32 (see `Arena`).
unsafe impl Sync for GuestAllocator {}

impl GuestAllocator {
    const fn new() -> Self {
        GuestAllocator(UnsafeCell::new(Dlmalloc::new_with_allocator(ArenaThenGrow {
            arena_given: UnsafeCell::new(false),
        })))
    }

    #[allow(clippy::mut_from_ref, reason = "single-threaded: one caller at a time")]
    fn heap(&self) -> &mut Dlmalloc<ArenaThenGrow> {
        // SAFETY: wasm32 guests are single-threaded and dlmalloc never calls
        // back into the global allocator, so no two borrows overlap.
        unsafe { &mut *self.0.get() }
    }
}

unsafe impl GlobalAlloc for GuestAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller's `GlobalAlloc` contract.
        unsafe { self.heap().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { self.heap().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { self.heap().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe { self.heap().realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

#[global_allocator]
static GLOBAL: GuestAllocator = GuestAllocator::new();
