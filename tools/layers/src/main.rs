//! `cargo run -p wasmpool-layers`: checks the host library's layers and
//! cycles (see the library's documentation) and exits 1 on a violation.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = match wasmpool_layers::check(&root, &Default::default()) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("wasmpool-layers: {error}");
            return ExitCode::from(2);
        }
    };
    for line in &report.upward {
        println!("{line}");
    }
    for cycle in &report.new_cycles {
        println!("a cycle {} does not list: {cycle}", wasmpool_layers::CYCLES);
    }
    for cycle in &report.gone_cycles {
        println!("{} lists a cycle that is gone (strike it): {cycle}", wasmpool_layers::CYCLES);
    }
    if report.passed() {
        println!(
            "{} files, {} paths into the crate: every import goes down a layer or stays in its own, and every cycle is listed",
            report.files, report.references
        );
        ExitCode::SUCCESS
    } else {
        println!("the host library's architecture is broken ({})", wasmpool_layers::ARCHITECTURE);
        ExitCode::FAILURE
    }
}
