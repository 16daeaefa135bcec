//! Results that must be the same bytes on every platform: Linux, Windows and
//! aarch64, thread and process workers alike.
//!
//! The test runs a fixed set of maps, float-heavy ones and the IEEE 754
//! edge cases whose NaNs Wasm leaves to the CPU, and compares a SHA-256 of
//! each map's results with `tests/all/data/result_fingerprints.txt`, computed
//! once and committed. With `WASMPOOL_FINGERPRINTS=FILE` it also writes its
//! lines to `FILE`; `.ci/run` compares the files of the Linux, Windows and
//! aarch64 builds with each other.

use guest_tasks::monte_carlo::SplitMix64;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use wasmpool::{Pool, PoolBuilder, WorkerKind};

const EXPECTED: &str = include_str!("data/result_fingerprints.txt");

/// Every map of the comparison: its name and its results, postcard-encoded.
fn results(pool: &Pool) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    // Square roots of numbers of every magnitude and sign (negatives give
    // NaN), made from bit patterns: host code such as `powi` may round
    // differently per platform, and the inputs must be the same bytes.
    let mut bits = SplitMix64::new(0);
    let xs: Vec<f64> = std::iter::repeat_with(|| f64::from_bits(bits.next_u64()))
        .take(1000)
        .chain([f64::MIN_POSITIVE / 3.0, f64::MAX, f64::INFINITY, f64::NEG_INFINITY, -0.0])
        .collect();
    let roots: Vec<f64> = pool.map("sqrt", xs.iter().copied()).expect("sqrt");
    out.push(("sqrt", encode(&roots)));

    let osc: Vec<(f64, f64)> =
        pool.map("oscillator", (1..=16u32).map(|k| (k * 2500, 1e-3 * f64::from(k)))).expect("oscillator");
    out.push(("oscillator", encode(&osc)));

    let (w, h) = (160u32, 120u32);
    let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..h).map(|y| (y, w, h, 500u32))).expect("mandel_row");
    out.push(("mandel_row", encode(&rows)));

    let pis: Vec<f64> = pool.map("monte_carlo_pi", (0..16u64).map(|seed| (50_000u64, seed))).expect("monte_carlo_pi");
    out.push(("monte_carlo_pi", encode(&pis)));

    let vectors = (1..=20).map(|n: i32| (0..n).map(|i| f64::from(i * i - 7 * n) / 3.0).collect::<Vec<f64>>());
    let unit: Vec<Vec<f64>> = pool.map("normalize", vectors).expect("normalize");
    out.push(("normalize", encode(&unit)));

    let quiet_nan_with_payload = f64::from_bits(0x7FF8_0000_0000_0ABC);
    let signalling_nan = f64::from_bits(0x7FF0_0000_0000_0001);
    let negative_nan = f64::from_bits(0xFFF8_0000_0000_0000);
    let pairs = [
        (0.0, 0.0),
        (f64::INFINITY, f64::INFINITY),
        (-1.0, 2.0),
        (-0.0, 0.0),
        (1.0, 3.0),
        (1e308, 10.0),
        (f64::MIN_POSITIVE, 0.5),
        (quiet_nan_with_payload, 1.0),
        (signalling_nan, 1.0),
        (negative_nan, negative_nan),
        (1.0, quiet_nan_with_payload),
    ];
    let bits: Vec<Vec<u64>> = pool.map("float_bits", pairs).expect("float_bits");
    out.push(("float_bits", encode(&bits)));

    // The tasks' own seeded generators (the pool's seed is fixed below).
    let hits: Vec<u64> = pool.map("pi_hits_seeded", [50_000u64; 16]).expect("pi_hits_seeded");
    out.push(("pi_hits_seeded", encode(&hits)));
    let walks: Vec<(f64, f64)> = pool.map("random_walk", [5_000u32; 16]).expect("random_walk");
    out.push(("random_walk", encode(&walks)));

    let text = "the quick brown fox jumps over the lazy dog the end";
    let words: BTreeMap<String, u32> = pool.call("word_frequencies", text).expect("word_frequencies");
    out.push(("word_frequencies", encode(&words)));
    out
}

/// SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `name sha256` lines, one per map.
fn fingerprints(pool: &Pool) -> String {
    results(pool).into_iter().map(|(name, bytes)| format!("{name} {}\n", sha256_hex(&bytes))).collect()
}

fn builder(kind: WorkerKind) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).worker_kind(kind).seed(2026)
}

fn pool(kind: WorkerKind) -> Pool {
    builder(kind).build().expect("the pool builds")
}

/// The bits of `0.0 / 0.0` computed by a task.
fn zero_over_zero(pool: &Pool) -> u64 {
    let bits: Vec<u64> = pool.call("float_bits", (0.0f64, 0.0f64)).expect("float_bits");
    bits[3]
}

each_kind! {
    fn without_canonicalization_only_nans_follow_the_cpu(kind) {
        let canonical = pool(kind);
        let cpu = builder(kind).canonicalize_nans(false).build().expect("the pool builds");
        assert_eq!(zero_over_zero(&canonical), 0x7FF8_0000_0000_0000, "{kind:?}: the canonical NaN");
        // x86 makes a negative NaN; aarch64 happens to make the canonical one.
        let cpu_nan = if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
            0xFFF8_0000_0000_0000
        } else {
            0x7FF8_0000_0000_0000
        };
        assert_eq!(zero_over_zero(&cpu), cpu_nan, "{kind:?}: the CPU's NaN");

        // Maps whose results hold no NaN are the same bytes either way.
        let without_nans = |lines: String| -> Vec<String> {
            lines
                .lines()
                .filter(|l| !l.starts_with("sqrt ") && !l.starts_with("float_bits "))
                .map(String::from)
                .collect()
        };
        assert_eq!(without_nans(fingerprints(&cpu)), without_nans(fingerprints(&canonical)), "{kind:?}");
    }
}

#[test]
fn results_are_the_same_bytes_on_every_platform() {
    let threads = fingerprints(&pool(WorkerKind::Threads));
    let processes = fingerprints(&pool(WorkerKind::Processes));
    assert_eq!(threads, processes, "thread and process workers disagree");

    if let Some(file) = std::env::var_os("WASMPOOL_FINGERPRINTS") {
        let module = std::fs::read(guest_tasks::WASM_PATH).expect("the module is readable");
        std::fs::write(&file, format!("module {}\n{threads}", sha256_hex(&module)))
            .expect("the fingerprint file is writable");
    }

    let expected: Vec<&str> = EXPECTED.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let actual: Vec<&str> = threads.lines().collect();
    let differing: Vec<&str> =
        actual.iter().filter(|line| !expected.contains(line)).map(|l| l.split(' ').next().unwrap_or(l)).collect();
    assert!(
        differing.is_empty() && actual.len() == expected.len(),
        "results differ from tests/all/data/result_fingerprints.txt in: {differing:?}\n\
         this platform computed:\n{threads}\n\
         (if a task was changed on purpose, replace the file's lines with these)"
    );
}

/// A result's postcard bytes: what a worker sent, bit for bit.
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("a result re-encodes")
}
