//! For tests: sending a memory's pages to swap, to check that what resets
//! an instance's memory sees pages the kernel has swapped out (Linux).

/// The host's page size the tests assume.
pub(crate) const PAGE: usize = 4096;

/// Fails the test, saying how to run it, unless a swap area is on.
pub(crate) fn require_swap() {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    assert!(swaps.lines().count() > 1, "no swap is on (/proc/swaps): turn a swap file on (bash .ci/swap)");
}

/// Whether this process's page at `address` is swapped out
/// (`/proc/self/pagemap`, bit 62).
fn swapped_out(address: usize) -> bool {
    use std::os::unix::fs::FileExt;
    let pagemap = std::fs::File::open("/proc/self/pagemap").expect("the page map can be read");
    let mut entry = [0u8; 8];
    pagemap.read_exact_at(&mut entry, (address / PAGE * 8) as u64).expect("the page's entry");
    u64::from_le_bytes(entry) & (1 << 62) != 0
}

/// Asks the kernel to swap out the `len` bytes at `base` (`MADV_PAGEOUT`,
/// Linux 5.4+), and checks that the pages `pages` (page numbers from
/// `base`) went.
pub(crate) fn page_out(base: *const u8, len: usize, pages: &[usize]) {
    let base_address = base as usize;
    for _ in 0..10 {
        // SAFETY: advice only, on a range the caller owns and has mapped.
        let done = unsafe { libc::madvise(base as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        assert_eq!(done, 0, "madvise(MADV_PAGEOUT): {}", std::io::Error::last_os_error());
        if pages.iter().all(|page| swapped_out(base_address + page * PAGE)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out: Vec<usize> = pages.iter().copied().filter(|page| swapped_out(base_address + page * PAGE)).collect();
    panic!("only pages {out:?} of {pages:?} were swapped out: nothing to check");
}
