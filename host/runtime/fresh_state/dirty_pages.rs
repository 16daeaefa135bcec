//! Which pages of a linear memory a task may have changed, from the
//! kernel's page tables: Linux's `PAGEMAP_SCAN` (6.7 and later). Elsewhere
//! (Windows, macOS, older kernels, qemu's user mode) there is no scanner
//! and every task gets a new instance instead.
//!
//! A page of linear memory can differ from the module's initial image only
//! if it is a private page of this process: a page only read maps the
//! module's image (a file page) or the kernel's zero page, and a page never
//! touched maps nothing. So the scan reports every page that is present or
//! swapped out and is neither a file page nor the zero page. That is a
//! superset of the pages changed (a page written back to its old contents
//! stays private), never a subset.

use std::ops::Range;

/// Scans this process's page tables.
pub(crate) struct DirtyPages {
    #[cfg(target_os = "linux")]
    pagemap: std::fs::File,
}

/// The scan failed: the caller must not trust the memory's contents.
#[derive(Debug)]
pub(crate) struct ScanFailed(pub String);

impl DirtyPages {
    /// The process's scanner, if this kernel has one (checked once).
    pub(crate) fn get() -> Option<&'static DirtyPages> {
        static SCANNER: std::sync::OnceLock<Option<DirtyPages>> = std::sync::OnceLock::new();
        SCANNER.get_or_init(DirtyPages::open).as_ref()
    }

    #[cfg(target_os = "linux")]
    fn open() -> Option<DirtyPages> {
        // With KSM merging this process's pages (`PR_SET_MEMORY_MERGE`), a
        // page a task filled with zeros may become the zero page again,
        // which the scan skips: it would not be reset.
        const PR_GET_MEMORY_MERGE: libc::c_int = 68;
        // SAFETY: a query with no pointer arguments.
        if unsafe { libc::prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) } > 0 {
            tracing::debug!("this process's pages may be merged (KSM): every task gets a new instance");
            return None;
        }
        let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
        let scanner = DirtyPages { pagemap };
        // An empty scan (at an aligned address) tells whether the kernel
        // knows the ioctl.
        match scanner.for_each(std::ptr::slice_from_raw_parts(std::ptr::null::<u8>(), 0), |_| {}) {
            Ok(()) => Some(scanner),
            Err(ScanFailed(why)) => {
                tracing::debug!("PAGEMAP_SCAN is unavailable ({why}): every task gets a new instance");
                None
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn open() -> Option<DirtyPages> {
        None
    }

    /// Calls `found` with each run of pages of `memory` (offsets into it,
    /// whole host pages) that may differ from what was mapped there. Runs
    /// come in increasing order and do not overlap. (Only the address
    /// range is read, so `found` may write to the memory.)
    #[cfg(target_os = "linux")]
    pub(crate) fn for_each(&self, memory: *const [u8], mut found: impl FnMut(Range<usize>)) -> Result<(), ScanFailed> {
        use linux::*;
        use std::os::fd::AsRawFd;
        let base = memory.cast::<u8>() as u64;
        let end = base + memory.len() as u64;
        let mut regions = [PageRegion::default(); REGIONS];
        let mut start = base;
        // Each round reports up to REGIONS runs and says where it stopped:
        // rounds are bounded by the number of runs.
        loop {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: 0,
                start,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: REGIONS as u64,
                max_pages: 0,
                category_inverted: PAGE_IS_PFNZERO | PAGE_IS_FILE,
                category_mask: PAGE_IS_PFNZERO | PAGE_IS_FILE,
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                return_mask: 0,
            };
            // SAFETY: the ioctl only reads this process's page tables for
            // `start..end` and writes at most `vec_len` regions to `vec`,
            // both owned here; `arg` has the kernel's layout.
            let filled = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
            if filled < 0 {
                return Err(ScanFailed(std::io::Error::last_os_error().to_string()));
            }
            let filled = filled as usize;
            if filled > REGIONS || arg.walk_end < start || arg.walk_end > end {
                return Err(ScanFailed(format!("the kernel reported {filled} regions ending at {:#x}", arg.walk_end)));
            }
            for region in &regions[..filled] {
                if region.start < start || region.end > end || region.start > region.end {
                    return Err(ScanFailed(format!(
                        "a region {:#x}..{:#x} outside the scan",
                        region.start, region.end
                    )));
                }
                found((region.start - base) as usize..(region.end - base) as usize);
            }
            if arg.walk_end >= end {
                return Ok(());
            }
            if arg.walk_end == start && filled == 0 {
                return Err(ScanFailed(format!("the scan made no progress at {start:#x}")));
            }
            start = arg.walk_end;
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn for_each(&self, _memory: *const [u8], _found: impl FnMut(Range<usize>)) -> Result<(), ScanFailed> {
        Err(ScanFailed("no page scanner on this system".into()))
    }
}

/// The kernel's interface (include/uapi/linux/fs.h).
#[cfg(target_os = "linux")]
mod linux {
    /// Runs reported per ioctl: a round resumes the walk where the last
    /// stopped, so fewer rounds cost less (a CPython component's memory
    /// has about 120 runs).
    pub(super) const REGIONS: usize = 256;
    pub(super) const PAGE_IS_FILE: u64 = 1 << 2;
    pub(super) const PAGE_IS_PRESENT: u64 = 1 << 3;
    pub(super) const PAGE_IS_SWAPPED: u64 = 1 << 4;
    pub(super) const PAGE_IS_PFNZERO: u64 = 1 << 5;
    /// `_IOWR('f', 16, struct pm_scan_arg)`.
    pub(super) const PAGEMAP_SCAN: u64 =
        (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    pub(super) struct PageRegion {
        pub start: u64,
        pub end: u64,
        pub categories: u64,
    }

    #[repr(C)]
    pub(super) struct PmScanArg {
        pub size: u64,
        pub flags: u64,
        pub start: u64,
        pub end: u64,
        pub walk_end: u64,
        pub vec: u64,
        pub vec_len: u64,
        pub max_pages: u64,
        pub category_inverted: u64,
        pub category_mask: u64,
        pub category_anyof_mask: u64,
        pub return_mask: u64,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A private anonymous mapping, as wasmtime gives a linear memory.
    struct Mapping {
        ptr: *mut u8,
        len: usize,
    }

    impl Mapping {
        fn new(len: usize) -> Mapping {
            // SAFETY: a fresh anonymous mapping, unmapped in Drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(ptr, libc::MAP_FAILED);
            Mapping { ptr: ptr.cast(), len }
        }

        fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: the mapping is `len` bytes, readable and writable.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: mapped in `new`.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    fn scan(memory: &[u8]) -> Vec<Range<usize>> {
        let mut runs = Vec::new();
        DirtyPages::get().expect("this kernel has PAGEMAP_SCAN").for_each(memory, |r| runs.push(r)).unwrap();
        runs
    }

    #[test]
    fn written_pages_are_reported_and_read_ones_are_not() {
        if DirtyPages::get().is_none() {
            eprintln!("SKIPPED: this kernel has no PAGEMAP_SCAN");
            return;
        }
        let page = 4096;
        let mut mapping = Mapping::new(64 * page);
        let memory = mapping.bytes();
        assert_eq!(scan(memory), Vec::<Range<usize>>::new());
        // Reading maps the zero page: nothing to report.
        let sum: u64 = memory.iter().step_by(page).map(|&b| b as u64).sum();
        assert_eq!(sum, 0);
        assert_eq!(scan(memory), Vec::<Range<usize>>::new());
        memory[3 * page + 5] = 1;
        memory[10 * page] = 0; // written, though with the value it had
        memory[11 * page + page - 1] = 7;
        assert_eq!(scan(memory), vec![3 * page..4 * page, 10 * page..12 * page]);
    }

    #[test]
    fn more_runs_than_one_round_reports_are_all_found() {
        if DirtyPages::get().is_none() {
            eprintln!("SKIPPED: this kernel has no PAGEMAP_SCAN");
            return;
        }
        let page = 4096;
        let runs = 3 * linux::REGIONS + 5;
        let mut mapping = Mapping::new(2 * runs * page);
        let memory = mapping.bytes();
        for run in 0..runs {
            memory[2 * run * page] = 1;
        }
        let found = scan(memory);
        assert_eq!(found, (0..runs).map(|run| 2 * run * page..(2 * run + 1) * page).collect::<Vec<_>>());
    }
}
