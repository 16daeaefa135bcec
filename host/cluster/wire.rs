#![cfg_attr(not(feature = "mpi"), allow(dead_code))]
//! The messages ranks exchange, as postcard bytes in MPI messages.
//!
//! Rank 0 sends [`Down`] messages (batches of jobs, pings, the end), every
//! other rank [`Up`] messages (batches of results, or that it is alive).
//! Set-up travels as [`Setup`] (rank 0 to all), [`Joined`] (each rank's
//! answer) and [`Go`]. Everything a rank receives is sized before it is
//! received (`policy::MessageBounds`), then decoded by [`decode`], which
//! refuses trailing bytes and never panics: a message that does not decode
//! is that rank's protocol error, not a crash.

use crate::error::TaskFailure;
use crate::runtime::instance::Outcome;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The version of these messages; ranks of another version are refused.
/// 2: the environment granted to tasks travels as digests of its values.
pub(crate) const CLUSTER_PROTOCOL: u32 = 2;

/// Rank 0's offer: the module and everything a rank needs to agree on.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Setup {
    /// [`CLUSTER_PROTOCOL`] of rank 0.
    pub protocol: u32,
    /// The module's bytes.
    #[serde(with = "serde_bytes")]
    pub module: Vec<u8>,
    /// SHA-256 of `module`, checked by every rank after the broadcast.
    pub sha256: [u8; 32],
    /// Where rank 0 read the module (for messages).
    pub origin: String,
    /// The pool's seed (the init task's seed derives from it).
    pub seed: u64,
}

/// A rank's answer to [`Setup`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Joined {
    /// [`CLUSTER_PROTOCOL`] of this rank.
    pub protocol: u32,
    /// The machine it runs on.
    pub host: String,
    /// Its pool, or why it could not build one.
    pub pool: Result<JoinedPool, String>,
}

/// What a rank that built its pool reports.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JoinedPool {
    /// Its workers.
    pub workers: u32,
    /// Its engine's compatibility hash: wasmtime's version, settings and
    /// the CPU features its code is compiled for.
    pub engine: u64,
    /// The settings that change results, as this rank has them, with the
    /// values of the environment variables granted to tasks left out.
    pub settings: String,
    /// Those variables' values, as digests: ranks compare them without
    /// ever sending or printing a value.
    pub env: Vec<EnvDigest>,
}

/// An environment variable granted to tasks (`WasiConfig::env`,
/// `--allow-env`): its name, and a digest of its value (values may be
/// secrets; they stay on their rank).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EnvDigest {
    /// The variable's name.
    pub name: String,
    /// SHA-256 of a fixed prefix, the name and the value.
    pub value: [u8; 32],
}

/// The digests of granted environment variables `(name, value)`, in order.
pub(crate) fn env_digests<'a>(vars: impl IntoIterator<Item = &'a (String, String)>) -> Vec<EnvDigest> {
    vars.into_iter()
        .map(|(name, value)| {
            let mut hash = Sha256::new();
            hash.update(b"wasmpool cluster: an environment variable's value\0");
            hash.update(name.as_bytes());
            hash.update(b"\0");
            hash.update(value.as_bytes());
            EnvDigest { name: name.clone(), value: hash.finalize().into() }
        })
        .collect()
}

/// Rank 0's verdict after every rank joined: serve, or stop (with why).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Go {
    /// Every rank agrees: serve.
    Serve,
    /// Some rank was refused: stop.
    Stop(String),
}

/// From rank 0 to another rank.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Down {
    /// Jobs to run.
    Batch(Vec<RemoteJob>),
    /// Nothing to send, but rank 0 is alive.
    Ping,
    /// The pool is closing: finish and stop.
    Close,
}

/// A chunk of inputs of one task, as a rank runs it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RemoteJob {
    /// Rank 0's number for it, repeated in the results.
    pub id: u64,
    /// The task's name (for errors).
    pub task: String,
    /// The export to call.
    pub export: String,
    /// The seed key of the call (see `crate::seed`).
    pub seed_key: u64,
    /// The call's wall-time limit per input.
    pub deadline: Option<Duration>,
    /// The call's fuel per input.
    pub fuel: Option<u64>,
    /// Each input's index in its call and its encoded arguments.
    pub items: Vec<RemoteItem>,
}

/// One input of a [`RemoteJob`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RemoteItem {
    /// Its index in the call: its seed derives from it.
    pub index: u64,
    /// Its arguments, or why they could not be encoded.
    pub args: Result<serde_bytes::ByteBuf, TaskFailure>,
}

/// From another rank to rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Up {
    /// Finished jobs, and the rank's counters.
    Results(Vec<RemoteResult>, RankCounters),
    /// Nothing finished, but the rank is alive.
    Alive(RankCounters),
}

/// The results of one [`RemoteJob`], in the order of its items.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RemoteResult {
    /// The job's [`RemoteJob::id`].
    pub id: u64,
    /// Each item's outcome, in item order.
    pub outcomes: Vec<Outcome>,
}

/// What a rank's workers have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RankCounters {
    /// Inputs run.
    pub tasks: u64,
    /// Time the workers spent running them, summed.
    pub busy: Duration,
    /// Inputs run again after a worker process died.
    pub retries: u64,
}

/// Encodes a message.
pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(message).map_err(|e| format!("cannot encode a cluster message: {e}"))
}

/// Decodes a message received from another rank; trailing bytes are an error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(format!("a cluster message has {} bytes past its end", rest.len())),
        Err(e) => Err(format!("a cluster message does not decode: {e}")),
    }
}

/// The fuzz target's entry point: any bytes, decoded as every message a
/// rank can receive, must decode or fail cleanly.
pub fn decode_messages_for_fuzzing(bytes: &[u8]) {
    let _ = decode::<Down>(bytes);
    let _ = decode::<Up>(bytes);
    let _ = decode::<Setup>(bytes);
    let _ = decode::<Joined>(bytes);
    let _ = decode::<Go>(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn jobs_and_results_round_trip() {
        let job = Down::Batch(vec![RemoteJob {
            id: 7,
            task: "sqrt".into(),
            export: "wasmpool_task_sqrt".into(),
            seed_key: 99,
            deadline: Some(Duration::from_millis(1500)),
            fuel: None,
            items: vec![
                RemoteItem { index: 3, args: Ok(serde_bytes::ByteBuf::from(vec![1, 2, 3])) },
                RemoteItem { index: 4, args: Err(TaskFailure::EncodeArguments("no".into())) },
            ],
        }]);
        let bytes = encode(&job).unwrap();
        let Down::Batch(jobs) = decode::<Down>(&bytes).unwrap() else { panic!("not a batch") };
        assert_eq!(jobs[0].items[0].index, 3);
        assert_eq!(jobs[0].deadline, Some(Duration::from_millis(1500)));
        let up = Up::Results(
            vec![RemoteResult {
                id: 7,
                outcomes: vec![Outcome::bare(Ok(vec![9])), Outcome::bare(Err(TaskFailure::Cancelled))],
            }],
            RankCounters { tasks: 2, ..RankCounters::default() },
        );
        let Up::Results(results, counters) = decode::<Up>(&encode(&up).unwrap()).unwrap() else { panic!() };
        assert_eq!(results[0].outcomes.len(), 2);
        assert_eq!(counters.tasks, 2);
    }

    #[test]
    fn env_digests_tell_values_apart_without_holding_them() {
        let a = env_digests(&[("TOKEN".to_owned(), "s3cret-a".to_owned())]);
        let b = env_digests(&[("TOKEN".to_owned(), "s3cret-b".to_owned())]);
        assert_eq!(a[0].name, "TOKEN");
        assert_ne!(a, b);
        assert_eq!(a, env_digests(&[("TOKEN".to_owned(), "s3cret-a".to_owned())]));
        // Name and value are kept apart: `AB=C` is not `A=BC`.
        let ab = env_digests(&[("AB".to_owned(), "C".to_owned())]);
        let a_bc = env_digests(&[("A".to_owned(), "BC".to_owned())]);
        assert_ne!(ab[0].value, a_bc[0].value);
        let shown = format!("{a:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Down::Ping).unwrap();
        bytes.push(0);
        assert!(decode::<Down>(&bytes).unwrap_err().contains("past its end"));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Down>(&bytes);
            let _ = decode::<Up>(&bytes);
            let _ = decode::<Joined>(&bytes);
            let _ = decode::<Setup>(&bytes);
        }
    }
}
