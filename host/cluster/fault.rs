//! Misbehaviour on purpose, for the tests of cluster mode
//! (`cli/tests/cluster.rs`): a rank that answers set-up twice or late,
//! sends more than its jobs allow, or holds its jobs while it keeps
//! answering. Debug builds only, asked for with the environment variable
//! `WASMPOOL_TEST_CLUSTER_FAULT=RANK:FAULT[,RANK:FAULT…]`; a release build
//! never reads it. A rank misbehaving so harms nobody but its own job,
//! which whoever sets a rank's environment could end anyway.

/// A way for a rank to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `answer-twice`: sends its set-up answer twice.
    AnswerTwice,
    /// `answer-late`: answers set-up 2 s late.
    AnswerLate,
    /// `oversize`: pads its first results past what its jobs allow (for
    /// jobs of one input, as `--chunk-size 1` makes them).
    Oversize,
    /// `hold`: keeps every job it is sent, unrun, and goes on sending
    /// heartbeats.
    Hold,
    /// `long-outcome`: makes its first outcome's stderr one byte longer
    /// than the output limit, in a message well within its size limit.
    LongOutcome,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::AnswerTwice => "answer-twice",
            Fault::AnswerLate => "answer-late",
            Fault::Oversize => "oversize",
            Fault::Hold => "hold",
            Fault::LongOutcome => "long-outcome",
        }
    }
}

/// Whether this process, rank `rank`, was asked to commit `fault`. Never
/// in a release build: the variable is not even read.
pub(crate) fn asked(rank: usize, fault: Fault) -> bool {
    cfg!(debug_assertions) && std::env::var("WASMPOOL_TEST_CLUSTER_FAULT").is_ok_and(|spec| listed(&spec, rank, fault))
}

/// Whether `spec` (`RANK:FAULT,…`) lists `fault` for `rank`.
fn listed(spec: &str, rank: usize, fault: Fault) -> bool {
    spec.split(',')
        .filter_map(|entry| entry.trim().split_once(':'))
        .any(|(r, f)| r.trim().parse::<usize>().is_ok_and(|r| r == rank) && f.trim() == fault.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_asked_per_rank() {
        let spec = "1:answer-twice, 2:answer-late,3:hold";
        assert!(listed(spec, 1, Fault::AnswerTwice));
        assert!(listed(spec, 2, Fault::AnswerLate));
        assert!(listed(spec, 3, Fault::Hold));
        assert!(!listed(spec, 2, Fault::AnswerTwice));
        assert!(!listed(spec, 0, Fault::Oversize));
        assert!(!listed("", 1, Fault::Hold));
        assert!(!listed("x:hold,1", 1, Fault::Hold));
    }
}
