//! The `--runs N` option the bench binaries share.

/// The number after `--runs` on the command line (at least 1), or `default`.
pub fn runs(default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
        .max(1)
}
