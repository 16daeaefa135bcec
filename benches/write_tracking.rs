//! Would tracking the pages an input writes make a component's reset in
//! place cheaper than copying back every page its start left written?
//! Measures, in one run, on this machine's kernel:
//! - what each way costs per page, on an anonymous mapping the size of a
//!   CPython component's memory (3,400 pages): userfaultfd's asynchronous
//!   write-protection (Linux 6.7: a write fault per page written after the
//!   reset, then `PAGEMAP_SCAN` finding and protecting them again), against
//!   the reset as it is (one `PAGEMAP_SCAN` walk and a copy of every
//!   private page);
//! - how many pages one input of a task component writes, on a kept
//!   instance (`InstanceMode::PerWorker`, so that nothing else writes):
//!   every writable mapping of this process is write-protected the same
//!   way, one `call`, then its written pages are counted.
//!
//! ```text
//! cargo bench --bench write_tracking -- [tasks.wasm] [--task sqrt --input 4]
//! ```
//!
//! Tracking pays only when an input writes fewer pages than the copy it
//! saves costs in faults. Figures and the conclusion: docs/benchmarks.md.

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;

    pub const PAGE: usize = 4096;
    const UFFD_API: u64 = 0xaa;
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    /// `_IOWR(0xAA, 0x3F, struct uffdio_api)` and
    /// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
    const UFFDIO_API: u64 = (3 << 30) | (24 << 16) | (0xaa << 8) | 0x3f;
    const UFFDIO_REGISTER: u64 = (3 << 30) | (32 << 16) | (0xaa << 8);
    const PM_SCAN_WP_MATCHING: u64 = 1;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    const PAGE_IS_PFNZERO: u64 = 1 << 5;
    const REGIONS: usize = 512;
    const PAGEMAP_SCAN: u64 = (3 << 30) | (96 << 16) | ((b'f' as u64) << 8) | 16;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// This process's page tables, and a userfaultfd in asynchronous
    /// write-protect mode.
    pub struct Tracker {
        pagemap: std::fs::File,
        uffd: OwnedFd,
    }

    impl Tracker {
        pub fn new() -> anyhow::Result<Tracker> {
            // SAFETY: a syscall with no pointer arguments.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
            anyhow::ensure!(fd >= 0, "userfaultfd: {}", std::io::Error::last_os_error());
            // SAFETY: a new descriptor, owned from here on.
            let uffd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            let mut api = [UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0];
            // SAFETY: `struct uffdio_api` is three u64s.
            let rc = unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API as _, api.as_mut_ptr()) };
            anyhow::ensure!(rc == 0, "UFFDIO_API (async write-protection): {}", std::io::Error::last_os_error());
            Ok(Tracker { pagemap: std::fs::File::open("/proc/self/pagemap")?, uffd })
        }

        /// Tracks writes to `start..end` from now on (and protects it).
        pub fn register(&self, start: usize, end: usize) -> anyhow::Result<()> {
            let mut register = [start as u64, (end - start) as u64, UFFDIO_REGISTER_MODE_WP, 0];
            // SAFETY: `struct uffdio_register` is four u64s.
            let rc = unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER as _, register.as_mut_ptr()) };
            anyhow::ensure!(rc == 0, "UFFDIO_REGISTER {start:#x}..{end:#x}: {}", std::io::Error::last_os_error());
            self.scan(start, end, PM_SCAN_WP_MATCHING, PAGE_IS_WRITTEN, 0, 0)?;
            Ok(())
        }

        /// Pages written in `start..end` since they were last protected;
        /// `protect` protects them again.
        pub fn written(&self, start: usize, end: usize, protect: bool) -> anyhow::Result<Vec<(usize, usize)>> {
            let flags = if protect { PM_SCAN_WP_MATCHING } else { 0 };
            self.scan(start, end, flags, PAGE_IS_WRITTEN, 0, 0)
        }

        /// Pages in `start..end` that are this process's own (present or
        /// swapped, neither file pages nor the zero page): what the reset
        /// as it is copies back.
        pub fn private(&self, start: usize, end: usize) -> anyhow::Result<Vec<(usize, usize)>> {
            let not = PAGE_IS_PFNZERO | PAGE_IS_FILE;
            self.scan(start, end, 0, not, not, PAGE_IS_PRESENT | PAGE_IS_SWAPPED)
        }

        fn scan(
            &self,
            start: usize,
            end: usize,
            flags: u64,
            mask: u64,
            inverted: u64,
            anyof: u64,
        ) -> anyhow::Result<Vec<(usize, usize)>> {
            let mut regions = [PageRegion::default(); REGIONS];
            let mut found = Vec::new();
            let mut at = start as u64;
            while at < end as u64 {
                let mut arg = PmScanArg {
                    size: std::mem::size_of::<PmScanArg>() as u64,
                    flags,
                    start: at,
                    end: end as u64,
                    vec: regions.as_mut_ptr() as u64,
                    vec_len: REGIONS as u64,
                    category_inverted: inverted,
                    category_mask: mask,
                    category_anyof_mask: anyof,
                    return_mask: mask | anyof,
                    ..PmScanArg::default()
                };
                // SAFETY: reads (and with WP_MATCHING, protects) this
                // process's page tables for the range; writes at most
                // `vec_len` regions into `regions`.
                let n = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
                anyhow::ensure!(n >= 0, "PAGEMAP_SCAN: {}", std::io::Error::last_os_error());
                found.extend(regions[..n as usize].iter().map(|r| (r.start as usize, r.end as usize)));
                anyhow::ensure!(arg.walk_end > at || n > 0, "PAGEMAP_SCAN made no progress at {at:#x}");
                at = arg.walk_end;
            }
            Ok(found)
        }
    }

    pub fn pages(runs: &[(usize, usize)]) -> usize {
        runs.iter().map(|(s, e)| (e - s) / PAGE).sum()
    }

    /// An anonymous private mapping, as a linear memory.
    pub struct Mapping {
        pub ptr: *mut u8,
        pub len: usize,
    }

    impl Mapping {
        pub fn new(len: usize) -> Mapping {
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
            assert_ne!(ptr, libc::MAP_FAILED, "mmap");
            Mapping { ptr: ptr.cast(), len }
        }

        pub fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: `len` readable and writable bytes, owned here.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: mapped in `new`.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    /// Per-round costs of both ways on a 3,400-page memory whose start
    /// left `kept` pages written, for an input that writes `input` of them.
    pub fn synthetic(kept: usize, input: usize, rounds: usize) -> anyhow::Result<[f64; 5]> {
        const PAGES: usize = 3400;
        let mut memory = Mapping::new(PAGES * PAGE);
        let pristine = vec![1u8; PAGES * PAGE];
        // The start's pages, spread as CPython's are.
        let stride = PAGES / kept;
        let bytes = memory.bytes();
        for page in 0..kept {
            bytes[page * stride * PAGE] = 1;
        }
        let (start, end) = (memory.ptr as usize, memory.ptr as usize + memory.len);
        let tracker = Tracker::new()?;
        let mut copy_all = 0.0;
        for _ in 0..rounds {
            let bytes = memory.bytes();
            for page in 0..input {
                bytes[page * stride * PAGE + 8] ^= 1;
            }
            let t = Instant::now();
            for (s, e) in tracker.private(start, end)? {
                for page in (s - start..e - start).step_by(PAGE) {
                    bytes[page..page + PAGE].copy_from_slice(&pristine[page..page + PAGE]);
                }
            }
            copy_all += t.elapsed().as_secs_f64();
        }
        tracker.register(start, end)?;
        let (mut faults, mut scan, mut copy, mut protect) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..rounds {
            let bytes = memory.bytes();
            let t = Instant::now();
            for page in 0..input {
                bytes[page * stride * PAGE + 8] ^= 1;
            }
            faults += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let written = tracker.written(start, end, false)?;
            scan += t.elapsed().as_secs_f64();
            anyhow::ensure!(pages(&written) == input, "{} pages found written, not {input}", pages(&written));
            let t = Instant::now();
            for (s, e) in &written {
                for page in (s - start..e - start).step_by(PAGE) {
                    bytes[page..page + PAGE].copy_from_slice(&pristine[page..page + PAGE]);
                }
            }
            copy += t.elapsed().as_secs_f64();
            // Protected after the copy, which writes the same pages.
            let t = Instant::now();
            tracker.written(start, end, true)?;
            protect += t.elapsed().as_secs_f64();
        }
        let us = |s: f64| s / rounds as f64 * 1e6;
        Ok([us(copy_all), us(faults), us(scan), us(copy), us(protect)])
    }

    /// The writable mappings of this process (start, end).
    pub fn writable_mappings() -> anyhow::Result<Vec<(usize, usize)>> {
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        let mut found = Vec::new();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else { continue };
            let name = fields.nth(3).unwrap_or("");
            // The stack and vsyscall pages cannot be registered.
            if !perms.starts_with("rw") || name.starts_with('[') {
                continue;
            }
            if let Some((s, e)) = range.split_once('-') {
                found.push((usize::from_str_radix(s, 16)?, usize::from_str_radix(e, 16)?));
            }
        }
        Ok(found)
    }
}

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    use linux::*;
    let mut path = None;
    let (mut task, mut input) = ("sqrt".to_string(), "4".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--task" => task = args.next().unwrap_or_default(),
            "--input" => input = args.next().unwrap_or_default(),
            "--bench" => {}
            _ => path = Some(arg),
        }
    }
    if let Err(e) = Tracker::new() {
        println!("write_tracking: skipped: {e:#}");
        return Ok(());
    }
    println!("per round, a 3,400-page memory; µs (best of 3 × 300 rounds)");
    println!("start's pages  input's pages  reset as it is  | tracked: faults  scan  copy  protect  = in all");
    for (kept, written) in [(308, 10), (308, 30), (308, 60), (308, 120)] {
        let mut best = [f64::MAX; 5];
        for _ in 0..3 {
            for (b, v) in best.iter_mut().zip(synthetic(kept, written, 300)?) {
                *b = b.min(v);
            }
        }
        let tracked: f64 = best[1..].iter().sum();
        println!(
            "{kept:13}  {written:13}  {:14.1}  | {:15.1}  {:4.1}  {:4.1}  {:7.1}  = {tracked:.1}",
            best[0], best[1], best[2], best[3], best[4]
        );
    }
    let Some(path) = path else {
        println!("(give a task component to count the pages one input of it writes)");
        return Ok(());
    };
    let pool = wasmpool::Pool::builder()
        .module_file(&path)
        .workers(1)
        .instance_mode(wasmpool::InstanceMode::PerWorker)
        .build()?;
    let call = pool.task(&task)?.json()?;
    for _ in 0..20 {
        call.call(&input)?;
    }
    let tracker = Tracker::new()?;
    let mut tracked = Vec::new();
    for (start, end) in writable_mappings()? {
        // Some mappings refuse (the kernel's own); the rest are counted.
        if tracker.register(start, end).is_ok() {
            tracked.push((start, end));
        }
    }
    // Per mapping: pages written by each of 20 calls, and private pages.
    let mut written = vec![Vec::new(); tracked.len()];
    for _ in 0..20 {
        for &(start, end) in &tracked {
            tracker.written(start, end, true)?;
        }
        call.call(&input)?;
        for (counts, &(start, end)) in written.iter_mut().zip(&tracked) {
            counts.push(pages(&tracker.written(start, end, true)?));
        }
    }
    println!("{path}: pages one `{task}({input})` on a kept instance wrote (median of 20), per writable mapping:");
    println!("        size  private  written");
    let mut total = 0;
    for (counts, &(start, end)) in written.iter_mut().zip(&tracked) {
        counts.sort();
        let median = counts[counts.len() / 2];
        total += median;
        if median > 0 {
            let private = pages(&tracker.private(start, end)?);
            println!("{:10} KiB  {private:7}  {median:7}", (end - start) / 1024);
        }
    }
    println!("in all: {total} pages");
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("write_tracking: skipped: Linux only (userfaultfd, PAGEMAP_SCAN)");
}
