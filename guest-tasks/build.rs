//! Compiles this crate for `wasm32-unknown-unknown` when it is built for the
//! host, and tells the native crate where the module is (`GUEST_TASKS_WASM`);
//! likewise for `wasm32-wasip1` (`GUEST_TASKS_WASI_WASM`), the module of the
//! tests and examples of wasmpool's opt-in WASI mode.
//!
//! This is what lets `cargo test` and `cargo run --example …` work on a fresh
//! clone: the module is built on demand, never committed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Each target the module is built for, and the variable naming its file.
const TARGETS: [(&str, &str); 2] =
    [("wasm32-unknown-unknown", "GUEST_TASKS_WASM"), ("wasm32-wasip1", "GUEST_TASKS_WASI_WASM")];

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    if target.starts_with("wasm32") {
        return; // This is the module's own build.
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for path in ["src", "build.rs", "Cargo.toml", "../guest-sdk", "../abi", "../Cargo.lock"] {
        println!("cargo::rerun-if-changed={}", manifest_dir.join(path).display());
    }

    for (target, variable) in TARGETS {
        ensure_wasm_target(target);
        let module = build_module(&manifest_dir, &out_dir, target);
        println!("cargo::rustc-env={variable}={}", module.display());
    }
}

/// Builds the module for `target`; returns the path of its copy in `out_dir`.
fn build_module(manifest_dir: &Path, out_dir: &Path, target: &str) -> PathBuf {
    // A target directory shared by every profile of the outer build, beside
    // it (OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out), and by its
    // cross builds (<target>/<triple>/<profile>/…): the module is the same
    // whatever the host's platform, so CI's Windows and aarch64 stages find
    // it built.
    let mut outer_target_dir = out_dir.ancestors().nth(4).unwrap_or(out_dir);
    let triple = env::var("TARGET").unwrap_or_default();
    if outer_target_dir.file_name().is_some_and(|name| name == triple.as_str()) {
        outer_target_dir = outer_target_dir.parent().unwrap_or(outer_target_dir);
    }
    let guest_target_dir = outer_target_dir.join("wasm-guest");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["rustc", "--lib", "--release", "--crate-type", "cdylib", "--target", target])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&guest_target_dir)
        // A lean module: no DWARF (the name section stays, so traps still
        // name their functions).
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .stdout(Stdio::from(std::io::stderr()));
    // Settings meant for the outer (native) build must not leak into the
    // guest's: flags, wrappers such as clippy-driver, target overrides.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        build.env_remove(var);
    }
    // The crates of `getrandom` 0.3 and 0.4 take their bytes from the
    // SDK's source on this target only when told so (docs/guide-for-students.md).
    if target == "wasm32-unknown-unknown" {
        build.env("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1fgetrandom_backend=\"custom\"");
    }
    let status = build.status().unwrap_or_else(|e| panic!("could not run cargo to build the guest module: {e}"));
    if !status.success() {
        panic!("building the guest module for {target} failed ({status}); see the errors above");
    }

    let built = guest_target_dir.join(target).join("release").join("guest_tasks.wasm");
    let module = out_dir.join(format!("guest_tasks.{target}.wasm"));
    std::fs::copy(&built, &module)
        .unwrap_or_else(|e| panic!("the guest module {} is missing after the build: {e}", built.display()));
    module
}

/// Makes sure the standard library for wasm32 is installed, installing it
/// with rustup when it is missing, or stops with the command that would.
fn ensure_wasm_target(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(Path::exists) {
        return;
    }
    println!("cargo::warning=the {target} target is missing; installing it with `rustup target add {target}`");
    let installed = Command::new("rustup")
        .args(["target", "add", target])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        panic!(
            "wasmpool's demo task module is compiled for {target}, whose standard library is not installed.\n\
             Install it with:\n\n    rustup target add {target}\n\n\
             (without rustup: install your distribution's Rust standard library for {target})"
        );
    }
}
