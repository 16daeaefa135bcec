//! Untrusted tasks on a sandboxed pool: each misbehaves in its own way,
//! fails alone with an error naming the limit it ran into, and the pool
//! goes on serving.
//!
//! ```text
//! cargo run --example sandbox
//! cargo build --bins --examples && cargo run --example sandbox -- --processes
//! ```
//!
//! With `--processes` the deadline is enforced by killing the worker
//! process (free while tasks run); with threads by epoch checks compiled
//! into the module (about 40 % slower on tight loops). See docs/sandbox.md.

use std::time::{Duration, Instant};
use wasmpool::{Pool, WorkerKind};

fn main() -> anyhow::Result<()> {
    let kind = if std::env::args().any(|a| a == "--processes") { WorkerKind::Processes } else { WorkerKind::Threads };
    let pool = Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .worker_kind(kind)
        .workers(2)
        .deadline(Duration::from_millis(500))
        .max_memory(32 << 20)
        .max_output(1 << 20)
        .build()?;
    println!("a {kind:?} pool: 500 ms per task, 32 MiB of memory, 1 MiB of output\n");

    let attempt = |what: &str, result: Result<String, wasmpool::Error>, started: Instant| {
        let outcome = result.unwrap_or_else(|e| format!("failed: {e}"));
        println!("{what:<34} {outcome}  ({} ms)", started.elapsed().as_millis());
    };
    let t = Instant::now();
    attempt("spin(u64::MAX), an endless loop:", pool.call::<_, u64>("spin", u64::MAX).map(|v| v.to_string()), t);
    let t = Instant::now();
    attempt("allocate(1 GiB):", pool.call::<_, u64>("allocate", 1u64 << 30).map(|v| v.to_string()), t);
    let t = Instant::now();
    attempt("recurse(10 million levels):", pool.call::<_, u64>("recurse", 10_000_000u64).map(|v| v.to_string()), t);
    let t = Instant::now();
    let big = pool.call::<_, Vec<u8>>("big_result", 4u32 << 20).map(|v| format!("{} bytes", v.len()));
    attempt("big_result(4 MiB):", big, t);
    let t = Instant::now();
    attempt("sqrt(2), an honest task:", pool.call::<_, f64>("sqrt", 2.0).map(|v| v.to_string()), t);

    // A task cancelled while it runs.
    let endless = pool.submit::<_, u64>("spin", u64::MAX)?;
    std::thread::sleep(Duration::from_millis(50));
    endless.cancel();
    println!(
        "{:<34} {}",
        "spin(u64::MAX), cancelled:",
        endless.wait().map_or_else(|e| e.to_string(), |v| v.to_string())
    );

    // A WASI module, using Rust's std, granted nothing (the default; grant
    // with `.wasi(wasmpool::WasiConfig::new()…)`).
    let wasi = Pool::builder().module_file(guest_tasks::WASI_WASM_PATH).worker_kind(kind).build()?;
    let greeting = wasi.task("greet")?.call_captured::<_, u32>("Ada".to_string())?;
    println!(
        "\nWASI greet(\"Ada\") printed \"{}\" (captured, not on our stdout)",
        greeting.output.stdout_for_terminal().trim_end()
    );
    let passwd = wasi.call::<_, String>("read_file", "/etc/passwd".to_string());
    println!("WASI read_file(\"/etc/passwd\"): {}", passwd.unwrap_or_else(|e| e.to_string()));
    let clock = wasi.call::<_, u64>("unix_time", ());
    println!("WASI unix_time(): {}", clock.map_or_else(|e| e.to_string(), |t| t.to_string()));
    Ok(())
}
