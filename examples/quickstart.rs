//! Hinsen's first slide, working: the square roots of 0..100, in parallel.
//!
//! ```text
//! cargo run --example quickstart
//! cargo build --bins --examples && cargo run --example quickstart -- --processes
//! ```
//!
//! In Python the same three lines fail twice (numpy.sqrt cannot be pickled;
//! a function defined after `Pool()` is unknown to the workers). Here the
//! task lives in the Wasm module every worker loads, so neither can happen.

use wasmpool::{Pool, WorkerKind};

fn main() -> anyhow::Result<()> {
    let kind = if std::env::args().any(|a| a == "--processes") { WorkerKind::Processes } else { WorkerKind::Threads };
    let pool = Pool::builder().module_file(guest_tasks::WASM_PATH).worker_kind(kind).build()?;
    let roots: Vec<f64> = pool.map("sqrt", (0..100).map(f64::from))?;

    let kind = match pool.worker_kind() {
        WorkerKind::Threads => "worker threads",
        WorkerKind::Processes => "worker processes",
    };
    println!("sqrt of 0..100 on {} {kind}:", pool.workers());
    for (row, chunk) in roots.chunks(10).enumerate() {
        let line: Vec<String> = chunk.iter().map(|r| format!("{r:7.4}")).collect();
        println!("{:3}..{:3}: {}", row * 10, row * 10 + 9, line.join(" "));
    }
    Ok(())
}
