//! The demo task module: every task wasmpool's examples, tests and
//! benchmarks run.
//!
//! Compiled for `wasm32-unknown-unknown`, this crate is one Wasm module that
//! every worker loads, so every task below exists in every worker, wherever
//! in the crate it is defined. Natively the same functions are ordinary Rust
//! (the baseline the benchmarks compare with), and [`WASM_PATH`] says where
//! the build script put the compiled module.
#![deny(missing_docs)]

pub mod channels;
pub mod echo;
pub mod failures;
pub mod ledger;
pub mod limits;
pub mod mandelbrot;
pub mod math;
pub mod monte_carlo;
pub mod state;
#[cfg(target_arch = "wasm32")]
pub mod system_random;
pub mod text;
#[cfg(target_os = "wasi")]
pub mod wasi;

/// Path of the compiled task module (`guest_tasks.wasm`), built by this
/// crate's build script.
#[cfg(not(target_arch = "wasm32"))]
pub const WASM_PATH: &str = env!("GUEST_TASKS_WASM");

/// Path of the same module built for `wasm32-wasip1`, with the WASI tasks
/// of `src/wasi.rs` added; pools run it with WASI, granting what
/// `PoolBuilder::wasi` grants (nothing by default).
#[cfg(not(target_arch = "wasm32"))]
pub const WASI_WASM_PATH: &str = env!("GUEST_TASKS_WASI_WASM");

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

#[cfg(test)]
mod tests {
    //! Tasks are plain Rust: they can be tested natively, without a pool.
    use super::*;

    #[test]
    fn tasks_compute_what_they_say() {
        assert_eq!(math::sqrt(2.0), std::f64::consts::SQRT_2);
        assert_eq!(math::add(i64::MAX, 1), i64::MIN);
        assert_eq!(text::word_count("  a b\tc\n"), 3);
        assert_eq!(text::parse_int("-12".into()).unwrap(), -12);
        assert!(text::parse_int("x".into()).is_err());
        assert_eq!(failures::fail_if_odd(4), Ok(2));
        assert_eq!(late::defined_last(1), 2);
    }

    #[test]
    fn the_mandelbrot_row_spans_the_image() {
        let row = mandelbrot::mandel_row(50, 200, 100, 64);
        assert_eq!(row.len(), 200);
        // The middle row crosses the set: both escaping and bounded points.
        assert!(row.contains(&255) && row.iter().any(|&p| p < 50));
    }

    #[test]
    fn the_pi_estimate_converges_and_depends_only_on_the_seed() {
        let pi = monte_carlo::monte_carlo_pi(200_000, 1);
        assert!((pi - std::f64::consts::PI).abs() < 0.01, "{pi}");
        assert_eq!(monte_carlo::monte_carlo_pi(1000, 9), monte_carlo::monte_carlo_pi(1000, 9));
        assert_ne!(monte_carlo::pi_hits(1000, 9), monte_carlo::pi_hits(1000, 10));
    }
}
