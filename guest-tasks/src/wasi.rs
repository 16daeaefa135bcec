//! Tasks that use Rust `std` as any program would: print, read the
//! environment, the clock and files. Built only into the `wasm32-wasip1`
//! module; what each task gets is what the pool grants
//! (`PoolBuilder::wasi`), and nothing else.

use wasmpool_guest::task;

/// Greets `name` on stdout and warns on stderr; returns the greeting's length.
#[task]
pub fn greet(name: String) -> u32 {
    let greeting = format!("hello, {name}!");
    println!("{greeting}");
    eprintln!("greeted {name}");
    greeting.len() as u32
}

/// Prints `lines` lines of `width` characters: a flood of output.
#[task]
pub fn shout(lines: u32, width: u32) {
    let line = "x".repeat(width as usize);
    for _ in 0..lines {
        println!("{line}");
    }
}

/// The environment variable `key`, if the task can see it.
#[task]
pub fn env_var(key: String) -> Option<String> {
    std::env::var(key).ok()
}

/// Seconds since 1970 by the wall clock; panics if the clock is denied.
#[task]
pub fn unix_time() -> u64 {
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The contents of the file at `path`, or the error opening it.
#[task]
pub fn read_file(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
}

/// Opens the file at `path` `times` times, holding every handle: how many
/// opens succeeded before one failed.
#[task]
pub fn hold_open(path: String, times: u32) -> u32 {
    let mut held = Vec::new();
    while held.len() < times as usize {
        match std::fs::File::open(&path) {
            Ok(file) => held.push(file),
            Err(_) => break,
        }
    }
    held.len() as u32
}

/// Writes `text` to the file at `path`.
#[task]
pub fn write_file(path: String, text: String) -> Result<(), String> {
    std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))
}

/// A number drawn through WASI's `random_get`, as any `std` program draws
/// it: the keys of `HashMap`'s `RandomState`. The pool gives `random_get`
/// the task's seeded stream, so the same seed gives the same number (and
/// the same `HashMap` iteration order).
#[task]
pub fn wasi_random() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u64)
}

/// Milliseconds measured with `Instant` around a little work: needs the
/// monotonic clock.
#[task]
pub fn elapsed_ms(n: u64) -> u64 {
    let start = std::time::Instant::now();
    let sum: u64 = (0..n).map(std::hint::black_box).sum();
    std::hint::black_box(sum);
    start.elapsed().as_millis() as u64
}

/// Sleeps `ms` milliseconds (needs the monotonic clock), then prints.
#[task]
pub fn nap(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    println!("slept {ms} ms");
    ms
}
