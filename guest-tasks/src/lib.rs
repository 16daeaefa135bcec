//! The demo task module: every task wasmpool's examples, tests and
//! benchmarks run.
//!
//! Compiled for `wasm32-unknown-unknown`, this crate is one Wasm module that
//! every worker loads, so every task below exists in every worker, wherever
//! in the crate it is defined. Natively the same functions are ordinary Rust
//! (the baseline the benchmarks compare with), and [`WASM_PATH`] says where
//! the build script put the compiled module.
#![deny(missing_docs)]

pub mod echo;
pub mod failures;
pub mod mandelbrot;
pub mod math;
pub mod monte_carlo;
pub mod state;
pub mod text;

/// Path of the compiled task module (`guest_tasks.wasm`), built by this
/// crate's build script.
#[cfg(not(target_arch = "wasm32"))]
pub const WASM_PATH: &str = env!("GUEST_TASKS_WASM");

/// The compiled task module's bytes.
#[cfg(not(target_arch = "wasm32"))]
pub fn wasm_bytes() -> std::io::Result<Vec<u8>> {
    std::fs::read(WASM_PATH)
}

/// Tasks defined at the very end of the crate, in a module of their own.
///
/// In Python's `multiprocessing` a function defined after `Pool()` is
/// unknown to the forked workers. Here definition order cannot matter: the
/// whole module is compiled before any worker starts.
pub mod late {
    use wasmpool_guest::task;

    /// Defined last of all; available in every worker like every other task.
    #[task]
    pub fn defined_last(x: u32) -> u32 {
        x + 1
    }
}
