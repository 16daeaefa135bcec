//! The rate of one map from Rust, the baseline of the Python package's
//! overhead (`benches/python/hinsen.py` runs this binary in the same run
//! and prints the ratio): `task` over the numbers `0..count` on `workers`
//! thread workers, default settings, as a typed map (postcard, what
//! `benches/compare.rs` measures) and as a JSON map (the entry point the
//! Python package calls, inputs and results as JSON text).
//!
//! ```text
//! cargo bench --bench map_rate -- MODULE [--task sqrt] [--count 1000000] [--workers 2] [--runs 3]
//! ```
//!
//! Prints one line per form, `typed SECONDS` and `json SECONDS`: the median
//! wall time of `--runs` maps, each checked against the first's results.

#[path = "common/runs.rs"]
mod runs;

use std::time::Instant;
use wasmpool::Pool;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let module =
        args.first().filter(|a| !a.starts_with("--")).cloned().ok_or_else(|| {
            anyhow::anyhow!("usage: map_rate MODULE [--task sqrt] [--count N] [--workers N] [--runs N]")
        })?;
    let task = value("--task").unwrap_or_else(|| "sqrt".into());
    let count: u32 = value("--count").map_or(Ok(1_000_000), |n| n.parse())?;
    let workers: usize = value("--workers").map_or(Ok(2), |n| n.parse())?;
    let runs = runs::runs(3);
    let pool = Pool::builder().module_file(&module).workers(workers).seed(1).build()?;

    let typed = pool.task(&task)?;
    let mut first: Option<Vec<f64>> = None;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let results: Vec<f64> = typed.map((0..count).map(f64::from))?;
        times.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(first.get_or_insert_with(|| results.clone()) == &results, "typed results differ between runs");
    }
    println!("typed {}", median(&mut times));

    let json = pool.task(&task)?.json()?;
    let texts: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let results: Vec<String> = json.imap(texts.iter().map(String::as_str))?.collect::<Result<_, _>>()?;
        times.push(started.elapsed().as_secs_f64());
        let parsed: Vec<f64> = results.iter().map(|r| r.parse()).collect::<Result<_, _>>()?;
        anyhow::ensure!(first.as_ref() == Some(&parsed), "the JSON map's results differ from the typed map's");
    }
    println!("json {}", median(&mut times));
    Ok(())
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
