//! The library's maps on a pool that spans the ranks of an MPI job, checked
//! against a pool on this machine alone (docs/cluster.md):
//!
//! ```text
//! cargo build --features mpi --example cluster --bins
//! mpirun -np 3 target/debug/examples/cluster            # threads in every rank
//! mpirun -np 3 target/debug/examples/cluster --processes
//! ```
//!
//! Rank 0 prints what it compared; every other rank serves it and prints
//! nothing. The exit status is 0 only if every result equals the local one.

use anyhow::{Context, ensure};
use wasmpool::cluster::Cluster;
use wasmpool::{Pool, PoolBuilder, TaskError, WorkerKind};

const SEED: u64 = 7;

fn builder(kind: WorkerKind) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).seed(SEED).worker_kind(kind)
}

fn main() -> anyhow::Result<()> {
    let kind = if std::env::args().any(|a| a == "--processes") { WorkerKind::Processes } else { WorkerKind::Threads };
    let cluster = Cluster::join().context("this example runs under mpirun")?;
    let ranks = cluster.size();
    let Some(pool) = builder(kind).cluster(cluster).build_or_serve()? else { return Ok(()) };
    let local = builder(kind).build()?;
    println!("a pool over {ranks} rank(s), {} workers in all, against one of {} here", pool.workers(), local.workers());

    // map: a seeded task, so every input's seed must follow its index.
    let walk = |p: &Pool| p.map::<_, (f64, f64)>("random_walk", (0..20_000u32).map(|i| 10 + i % 50));
    ensure!(walk(&pool)? == walk(&local)?, "map(random_walk) differs");
    println!("map: 20000 seeded random walks, equal");

    // map_each: failures are each input's own.
    let divide = |p: &Pool| -> anyhow::Result<Vec<Result<i64, TaskError>>> {
        Ok(p.map_each("divide", (0..5_000i64).map(|i| (i, i % 7)))?)
    };
    let (spread, here) = (divide(&pool)?, divide(&local)?);
    ensure!(spread == here, "map_each(divide) differs");
    println!("map_each: 5000 divisions, {} by zero, equal", spread.iter().filter(|r| r.is_err()).count());

    // imap: in input order, lazily.
    let hits = |p: &Pool| -> anyhow::Result<Vec<u64>> {
        p.imap("pi_hits_seeded", (0..10_000u64).map(|_| 100u64))?.map(|r| r.map_err(anyhow::Error::from)).collect()
    };
    ensure!(hits(&pool)? == hits(&local)?, "imap(pi_hits_seeded) differs");
    println!("imap: 10000 seeded Monte Carlo runs, equal");

    // imap_unordered: the same results by index, in any order.
    let mut spread: Vec<(usize, f64)> = pool
        .imap_unordered::<_, f64>("sqrt", (0..50_000).map(f64::from))?
        .map(|(i, r)| Ok((i, r?)))
        .collect::<anyhow::Result<_>>()?;
    spread.sort_by_key(|(i, _)| *i);
    let here: Vec<f64> = local.map("sqrt", (0..50_000).map(f64::from))?;
    ensure!(
        spread.iter().map(|(_, r)| r.to_bits()).eq(here.iter().map(|r| r.to_bits())),
        "imap_unordered(sqrt) differs"
    );
    println!("imap_unordered: 50000 square roots, equal by index");

    if let Some(ranks) = pool.cluster_stats() {
        for rank in ranks {
            println!("  rank {} ({}): {} workers, {} tasks", rank.rank, rank.host, rank.workers, rank.tasks);
        }
    }
    ensure!(pool.lost_ranks().is_empty(), "ranks were lost: {:?}", pool.lost_ranks());
    Ok(())
}
