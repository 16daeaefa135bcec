//! The library's integration tests, as one test binary (as wasmtime keeps
//! its own in `tests/all/`): one link of wasmtime instead of one per file,
//! in each of CI's three builds. Each file is a module named for what it
//! covers; run one with `cargo test --test all <module>::`, e.g.
//! `cargo test --test all hostile::`.
//!
//! A test that covers both worker kinds is written once, in `each_kind!`
//! (`common.rs`), which makes it two tests: `name::threads` and
//! `name::processes`. Tests that run a test of this binary in a child
//! process (to limit its address space, or to kill its host) name it with
//! [`common::this_binarys_test`].

#[macro_use]
mod common;

mod allocator;
mod backpressure;
mod c_guest;
mod calls;
mod channels;
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
