//! Load time against module size: modules of 1,000, 10,000 and 100,000
//! task records (one function exported under every task's name, so only
//! the records and exports grow), built into a 1-worker thread pool with
//! the cache off (the whole load: validation, compilation, every check,
//! the probe), and refused when one name repeats or one export is
//! missing. Growth of 10× per row means linear; the old duplicate check
//! (every record against every earlier one) is timed beside it as the
//! baseline it replaced.
//!
//! ```text
//! cargo bench --bench load              # best of 5 runs
//! cargo bench --bench load -- --runs 2
//! ```

#[path = "../tests/all/common/records.rs"]
mod records;
#[path = "common/runs.rs"]
mod runs;

use records::{Records, module_with_records, task_name};
use std::time::{Duration, Instant};
use wasmpool::Pool;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn best(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

fn load(bytes: &[u8], expect_ok: bool) -> Duration {
    let start = Instant::now();
    let built = Pool::builder().module_bytes(bytes.to_vec()).workers(1).disable_cache().build();
    let took = start.elapsed();
    assert_eq!(built.is_ok(), expect_ok, "{:?}", built.err());
    took
}

/// The duplicate check `decode_manifest` had before: each name against
/// every earlier one.
fn quadratic_duplicate_check(names: &[String]) -> Duration {
    let start = Instant::now();
    let mut seen: Vec<&String> = Vec::new();
    for name in names {
        assert!(!seen.contains(&name));
        seen.push(name);
    }
    start.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runs = runs::runs(5);
    println!("# Load time against task records (best of {runs}; 1 thread worker, no cache)\n");
    println!(
        "| records | module | load (valid) | refuse (name repeated) | refuse (export missing) | per record (valid) | old duplicate check alone |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut previous: Option<Duration> = None;
    let mut growth = Vec::new();
    for n in SIZES {
        let valid = module_with_records(n, Records::Valid);
        let repeated = module_with_records(n, Records::Duplicated);
        let missing = module_with_records(n, Records::MissingExport);
        let ok = best(runs, || load(&valid, true));
        let dup = best(runs, || load(&repeated, false));
        let miss = best(runs, || load(&missing, false));
        let names: Vec<String> = (0..n).map(task_name).collect();
        let old = quadratic_duplicate_check(&names);
        println!(
            "| {n} | {} KiB | {} | {} | {} | {:.2} µs | {} |",
            valid.len() / 1024,
            ms(ok),
            ms(dup),
            ms(miss),
            ok.as_secs_f64() * 1e6 / n as f64,
            ms(old)
        );
        if let Some(before) = previous {
            growth.push(ok.as_secs_f64() / before.as_secs_f64());
        }
        previous = Some(ok);
    }
    let growth: Vec<String> = growth.iter().map(|g| format!("{g:.1}×")).collect();
    println!("\nload time per 10× records: {} (10× is linear)", growth.join(", "));
}
