//! The library's integration tests, as one test binary (as wasmtime keeps
//! its own in `tests/all/`): one link of wasmtime instead of one per file,
//! in each of CI's three builds. Each file is a module named for what it
//! covers; run one with `cargo test --test all <module>::`, e.g.
//! `cargo test --test all hostile::`.
//!
//! Tests that run a test of this binary in a child process (to limit its
//! address space, or to kill its host) name it with [`common::this_binarys_test`].

mod allocator;
mod backpressure;
mod c_guest;
mod calls;
mod channels;
mod common;
mod cross_platform;
mod determinism;
mod encoding;
mod errors;
mod hinsen;
mod hostile;
mod json;
mod lifecycle;
mod limits;
mod processes;
mod state_modes;
mod wasi;
