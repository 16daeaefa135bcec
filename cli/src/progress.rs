//! The progress bar on stderr, and the summary at the end of a run.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use wasmpool::PoolStats;
use wasmpool::cluster::RankStats;

/// The bar: shown only when stderr is a terminal, the results are not
/// written to one (they would be drawn over), and not `--quiet`.
pub struct Progress {
    bar: ProgressBar,
    failed: u64,
}

impl Progress {
    /// A bar over `total` lines (a spinner with a count when unknown).
    pub fn new(total: Option<usize>, quiet: bool, results_to_terminal: bool) -> Progress {
        let target = if quiet || results_to_terminal || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total as u64), target),
                "{bar:30} {human_pos}/{human_len} lines  {rate}  ETA {eta}  {msg}",
            ),
            None => (ProgressBar::with_draw_target(None, target), "{spinner} {human_pos} lines  {rate}  {msg}"),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            // Whole lines per second (indicatif's own `per_sec` shows four decimals).
            bar.set_style(style.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} lines/s", state.per_sec());
            }));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar, failed: 0 }
    }

    /// One more line answered.
    pub fn done(&mut self, ok: bool) {
        if !ok {
            self.failed += 1;
            self.bar.set_message(format!("{} failed", self.failed));
        }
        self.bar.inc(1);
    }

    /// Writes `text` on stderr, above the bar.
    pub fn print(&self, text: &str) {
        self.bar.suspend(|| {
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        });
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What a run did, for the summary and the exit status.
#[derive(Debug, Default)]
pub struct Report {
    /// Lines answered (successfully or not).
    pub lines: u64,
    /// Lines that failed.
    pub failed: u64,
    /// Whether the run stopped at a failing line.
    pub stopped: bool,
    /// Wall time of the run.
    pub wall: Duration,
    /// The pool's seed.
    pub seed: u64,
    /// What the workers did.
    pub stats: PoolStats,
    /// Lines a resumed run found done already.
    pub resumed: u64,
    /// Cluster mode: what each rank did.
    pub ranks: Option<Vec<RankStats>>,
}

impl Report {
    /// The summary printed on stderr at the end.
    pub fn summary(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let rate = if secs > 0.0 { self.lines as f64 / secs } else { 0.0 };
        let busy: Vec<String> = self
            .stats
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| format!("#{i} {:.0}%", 100.0 * w.busy.as_secs_f64() / secs.max(f64::MIN_POSITIVE)))
            .collect();
        let stopped = if self.stopped { " (stopped at the first failure)" } else { "" };
        let resumed = if self.resumed > 0 { format!(" (and {} done before)", self.resumed) } else { String::new() };
        let mut summary = format!(
            "wasmpool: {} lines{resumed}, {} failed{stopped}, {} retries, {secs:.2} s wall ({rate:.0} lines/s), --seed {}\n\
             wasmpool: workers busy: {}",
            self.lines,
            self.failed,
            self.stats.retries(),
            self.seed,
            busy.join(", ")
        );
        if let Some(ranks) = &self.ranks {
            summary.push_str(&rank_summary(ranks, self.wall));
        }
        summary
    }
}

/// Cluster mode: each rank's share of the tasks, how busy its workers
/// were, and its retries (after a worker crash; after a stalled deadline).
fn rank_summary(ranks: &[RankStats], wall: Duration) -> String {
    let total: u64 = ranks.iter().map(|r| r.tasks).sum::<u64>().max(1);
    let secs = wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut text = format!("\nwasmpool: {} ranks:", ranks.len());
    for rank in ranks {
        let busy = 100.0 * rank.busy.as_secs_f64() / (secs * rank.workers.max(1) as f64);
        text.push_str(&format!(
            "\nwasmpool:   #{} {}: {} workers, {} tasks ({:.0}%), busy {busy:.0}%, {} retries, {} deadline retries",
            rank.rank,
            wasmpool::text::escape_line(&rank.host),
            rank.workers,
            rank.tasks,
            100.0 * rank.tasks as f64 / total as f64,
            rank.retries,
            rank.deadline_retries
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmpool::WorkerStats;

    #[test]
    fn the_summary_has_counts_time_and_busy_shares() {
        let report = Report {
            lines: 1000,
            failed: 2,
            stopped: false,
            wall: Duration::from_secs(2),
            seed: 42,
            stats: PoolStats {
                workers: vec![
                    WorkerStats { tasks: 600, busy: Duration::from_millis(1900), retries: 1 },
                    WorkerStats { tasks: 400, busy: Duration::from_secs(1), retries: 0 },
                ],
            },
            resumed: 0,
            ranks: None,
        };
        assert_eq!(
            report.summary(),
            "wasmpool: 1000 lines, 2 failed, 1 retries, 2.00 s wall (500 lines/s), --seed 42\n\
             wasmpool: workers busy: #0 95%, #1 50%"
        );
    }

    #[test]
    fn a_cluster_summary_has_each_rank_s_share() {
        let rank = |rank: usize, tasks: u64, busy: u64| RankStats {
            rank,
            host: format!("node{rank}"),
            workers: 2,
            tasks,
            busy: Duration::from_secs(busy),
            retries: 0,
            deadline_retries: u64::from(rank == 1),
        };
        let report = Report {
            lines: 100,
            wall: Duration::from_secs(2),
            resumed: 5,
            ranks: Some(vec![rank(0, 25, 1), rank(1, 75, 4)]),
            ..Report::default()
        };
        let summary = report.summary();
        assert!(summary.contains("100 lines (and 5 done before)"), "{summary}");
        assert!(
            summary.contains("#0 node0: 2 workers, 25 tasks (25%), busy 25%, 0 retries, 0 deadline retries"),
            "{summary}"
        );
        assert!(
            summary.contains("#1 node1: 2 workers, 75 tasks (75%), busy 100%, 0 retries, 1 deadline retries"),
            "{summary}"
        );
    }
}
