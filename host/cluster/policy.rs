#![cfg_attr(not(feature = "mpi"), allow(dead_code))]
//! The decisions of cluster mode that need no MPI, as pure functions
//! tested without it:
//! - [`MessageBounds`]: the largest message each side may receive, derived
//!   from the pool's limits; a receive compares it with the size MPI
//!   reports before anything is allocated;
//! - [`cut`] and [`job_len`]: jobs cut so that no message rank 0 sends
//!   passes the bound the other ranks hold it to;
//! - [`Answers`]: set-up answers counted by rank, so that a rank answering
//!   twice cannot stand in for one that did not answer;
//! - [`check`]: a rank's engine, settings and granted environment against
//!   rank 0's, in messages that never show a variable's value;
//! - [`Holding`] and [`allowance`]: how long a rank may hold the jobs it was
//!   sent, by their deadlines, before it counts as making no progress.

use super::ClusterError;
use super::wire::{CLUSTER_PROTOCOL, EnvDigest, Joined, RemoteJob};
use crate::error::TaskFailure;
use crate::sandbox::limits::{CompileLimits, Limits};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Room in one input's outcome for a failure in place of its result: a
/// message of at most 64 KiB, a location of 4 KiB, 64 frame names of 1 KiB
/// each, possibly nested in an init failure (as worker processes' replies
/// are reckoned).
pub(crate) const FAILURE_ROOM: u64 = 1 << 20;
/// Postcard's framing of one outcome: the result's tag and three lengths.
const OUTCOME_FRAMING: u64 = 64;
/// Framing of one job's results in an `Up` message: its number and count.
const RESULT_FRAMING: u64 = 32;
/// An `Up` message besides its jobs' results: its tag, their count and the
/// rank's counters.
const UP_FRAMING: u64 = 1024;
/// The most a lost rank's message may be to be received, and dropped (its
/// heartbeats, and whatever small message was on its way). Larger ones are
/// left unreceived.
pub(crate) const DRAIN_BYTES: u64 = 64 << 10;

/// Framing of one input in a `Down` message: its index, tag and length.
const ITEM_FRAMING: u64 = 32;
/// Framing of one job in a `Down` message besides its items and names: its
/// number, seed key, limits, and the lengths.
const JOB_FRAMING: u64 = 128;
/// Room for a job's task and export names in [`MessageBounds::max_job`]:
/// task names are at most 200 bytes (`wasmpool_abi::MAX_TASK_NAME_LEN`),
/// exports add a prefix.
const NAMES_ROOM: u64 = 4096;
/// A `Down` message besides its jobs: its tag and their count.
const DOWN_FRAMING: u64 = 64;
/// Bytes of jobs (as [`job_len`] counts them) past which rank 0 puts no
/// more jobs in one message, and most bytes of a job of several inputs.
pub(crate) const BATCH_BYTES: u64 = 8 << 20;

/// The longest origin (where rank 0 read the module) a `Setup` carries.
pub(crate) const ORIGIN_BYTES: usize = 4096;
/// A `Setup` besides its module's bytes: protocol, hash, seed and origin.
const SETUP_FRAMING: u64 = ORIGIN_BYTES as u64 + 256;
/// The longest reason a set-up answer or verdict carries.
pub(crate) const SETUP_TEXT_BYTES: usize = 64 << 10;
/// The longest host name a set-up answer carries.
pub(crate) const HOST_BYTES: usize = 1024;
/// A set-up answer besides its settings and environment: protocol, host,
/// workers, engine hash, or the reason it has no pool.
const JOINED_FRAMING: u64 = SETUP_TEXT_BYTES as u64 + HOST_BYTES as u64 + 1024;
/// Per granted environment variable in an answer, besides its name: its
/// digest and the lengths.
const ENV_FRAMING: u64 = 48;
/// Most workers a rank may say it has: its window (two jobs per worker)
/// and rank 0's read-ahead (four chunks per worker of the pool) grow with
/// it.
pub(crate) const MAX_RANK_WORKERS: u32 = 4096;

/// What ranks must agree on at set-up, as this rank has it: the settings
/// that change results (as text, without the values of the environment
/// variables granted to tasks) and digests of those values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Agreement {
    /// Limits, instance mode, init task, WASI grants (values left out),
    /// NaN canonicalisation, compile limits.
    pub settings: String,
    /// The granted environment variables' values, as digests.
    pub env: Vec<EnvDigest>,
}

/// The largest message of each kind a rank accepts, from the pool's
/// limits (which every rank agrees on; a rank whose limits differ is
/// refused at set-up).
#[derive(Debug, Clone)]
pub(crate) struct MessageBounds {
    max_output: u64,
    max_memory: u64,
    max_module: u64,
    /// This rank's settings text, and its granted variables.
    settings: u64,
    env_vars: u64,
}

impl MessageBounds {
    /// The bounds of a pool of these limits and settings.
    pub(crate) fn new(limits: &Limits, compile: &CompileLimits, agreement: &Agreement) -> Self {
        MessageBounds {
            max_output: limits.max_output as u64,
            max_memory: limits.max_memory as u64,
            max_module: compile.max_module_bytes as u64,
            settings: agreement.settings.len() as u64,
            env_vars: agreement.env.len() as u64,
        }
    }

    /// The pool's output limit, which every outcome a rank sends is within.
    pub(crate) fn max_output(&self) -> usize {
        usize::try_from(self.max_output).unwrap_or(usize::MAX)
    }

    /// The largest outcome of one input a sound rank sends: its result (at
    /// most `max_output`, and no more than an instance's memory) or a
    /// failure, with the stdout and stderr a WASI task may write (at most
    /// `max_output` each).
    pub(crate) fn outcome(&self) -> u64 {
        let result = self.max_output.min(self.max_memory).max(FAILURE_ROOM);
        result.saturating_add(self.max_output.saturating_mul(2)).saturating_add(OUTCOME_FRAMING)
    }

    /// The largest `Up` message a sound rank that holds `jobs` jobs of
    /// `inputs` inputs in all can send: every result at its largest (a rank
    /// answers only for the jobs it holds). Messages tasks send while they
    /// run are not forwarded from other ranks, so `max_message` plays no
    /// part.
    pub(crate) fn up(&self, jobs: u64, inputs: u64) -> u64 {
        UP_FRAMING
            .saturating_add(jobs.saturating_mul(RESULT_FRAMING))
            .saturating_add(inputs.saturating_mul(self.outcome()))
    }

    /// The largest an instance's memory may be (`max_memory`).
    pub(crate) fn max_memory(&self) -> u64 {
        self.max_memory
    }

    /// The largest job of one input rank 0 sends: arguments no larger than
    /// an instance's memory, which they are copied into. An input larger
    /// than that cannot run anywhere, and is not sent.
    pub(crate) fn max_job(&self) -> u64 {
        (JOB_FRAMING + NAMES_ROOM + ITEM_FRAMING).saturating_add(self.max_memory)
    }

    /// The largest `Down` message rank 0 sends: jobs until they reach
    /// [`BATCH_BYTES`], the last of them at most [`BATCH_BYTES`] or one input
    /// alone ([`max_job`](Self::max_job)).
    pub(crate) fn down(&self) -> u64 {
        BATCH_BYTES.saturating_add(BATCH_BYTES.max(self.max_job())).saturating_add(DOWN_FRAMING)
    }

    /// The largest `Setup` this rank accepts: a module within its own
    /// compile limit, and the rest.
    pub(crate) fn setup(&self) -> u64 {
        self.max_module.saturating_add(SETUP_FRAMING)
    }

    /// The largest set-up answer rank 0 accepts: settings and variables up
    /// to twice as long as its own (an answer that agrees is as long; one
    /// that differs is still read, to say how).
    pub(crate) fn joined(&self) -> u64 {
        // The variables' names appear in the settings too.
        JOINED_FRAMING
            .saturating_add(self.settings.saturating_mul(4))
            .saturating_add(self.env_vars.saturating_mul(2 * ENV_FRAMING))
    }

    /// The largest verdict a rank accepts from rank 0: a reason of at most
    /// [`SETUP_TEXT_BYTES`].
    pub(crate) fn go(&self) -> u64 {
        SETUP_TEXT_BYTES as u64 + 64
    }
}

/// An upper bound of one input's encoded size in a `Down` message: its
/// arguments' length (`Ok`) or its encoding failure, and the framing.
pub(crate) fn item_len(args: Result<usize, &TaskFailure>) -> u64 {
    let body = match args {
        Ok(len) => len as u64,
        Err(failure) => postcard::to_stdvec(failure).map_or(FAILURE_ROOM, |bytes| bytes.len() as u64),
    };
    ITEM_FRAMING.saturating_add(body)
}

/// An upper bound of a job's encoded size besides its inputs: the framing
/// and its task's and export's names.
pub(crate) fn job_framing(task: &str, export: &str) -> u64 {
    JOB_FRAMING.saturating_add(task.len() as u64).saturating_add(export.len() as u64)
}

/// An upper bound of `job`'s encoded size.
pub(crate) fn job_len(job: &RemoteJob) -> u64 {
    job.items.iter().fold(job_framing(&job.task, &job.export), |sum, item| {
        sum.saturating_add(item_len(item.args.as_ref().map(|args| args.len())))
    })
}

/// A job's inputs, by their [`item_len`]s, cut into groups of consecutive
/// positions, each one message's job: at most `budget` bytes with
/// `framing`, or a single input. An input that even alone passes both
/// `budget` and `max_alone` is in no group; it is returned apart.
pub(crate) fn cut(lens: &[u64], framing: u64, budget: u64, max_alone: u64) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut groups = Vec::new();
    let mut refused = Vec::new();
    let mut group = Vec::new();
    let mut size = framing;
    for (position, &len) in lens.iter().enumerate() {
        if framing.saturating_add(len) > budget.max(max_alone) {
            refused.push(position);
            continue;
        }
        if !group.is_empty() && size.saturating_add(len) > budget {
            groups.push(std::mem::take(&mut group));
            size = framing;
        }
        group.push(position);
        size = size.saturating_add(len);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    (groups, refused)
}

/// Which ranks have answered at set-up: each counts once, whatever it
/// sends, so a rank answering twice cannot stand in for a missing one.
#[derive(Debug)]
pub(crate) struct Answers {
    seen: Vec<bool>,
    left: usize,
}

/// What one more answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The rank's first answer.
    First,
    /// The rank answered before: it broke the protocol.
    Again,
    /// From rank 0 itself, or no rank of the job.
    Stranger,
}

impl Answers {
    /// Waiting for ranks 1 to `size - 1`.
    pub(crate) fn new(size: usize) -> Self {
        Answers { seen: vec![false; size], left: size.saturating_sub(1) }
    }

    /// Files an answer from `rank`.
    pub(crate) fn file(&mut self, rank: usize) -> Answer {
        match self.seen.get_mut(rank) {
            Some(_) if rank == 0 => Answer::Stranger,
            None => Answer::Stranger,
            Some(seen) if *seen => Answer::Again,
            Some(seen) => {
                *seen = true;
                self.left -= 1;
                Answer::First
            }
        }
    }

    /// Whether every other rank has answered.
    pub(crate) fn complete(&self) -> bool {
        self.left == 0
    }

    /// The ranks that have not answered.
    pub(crate) fn missing(&self) -> Vec<usize> {
        (1..self.seen.len()).filter(|&rank| !self.seen[rank]).collect()
    }
}

/// Another rank as rank 0 knows it after set-up.
#[derive(Debug, Clone)]
pub(crate) struct RankInfo {
    pub rank: usize,
    pub host: String,
    pub workers: usize,
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn fit(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One rank's set-up answer, checked against rank 0's engine hash and what
/// it agreed to (`own`, if rank 0 built its pool). Environment variables
/// are compared by their values' digests; a refusal names them, never
/// shows a value.
pub(crate) fn check(rank: usize, joined: Joined, own: Option<(u64, &Agreement)>) -> Result<RankInfo, ClusterError> {
    let host = fit(&joined.host, HOST_BYTES).to_owned();
    let refuse = |reason: String| ClusterError::Refused { rank, host: host.clone(), reason };
    if joined.protocol != CLUSTER_PROTOCOL {
        return Err(refuse(format!(
            "it speaks cluster protocol {}, rank 0 speaks {CLUSTER_PROTOCOL}: run the same wasmpool on every node",
            joined.protocol
        )));
    }
    let pool = joined.pool.map_err(|reason| refuse(fit(&reason, SETUP_TEXT_BYTES).to_owned()))?;
    if pool.workers > MAX_RANK_WORKERS {
        return Err(refuse(format!(
            "it says it has {} workers, more than the {MAX_RANK_WORKERS} a rank may have",
            pool.workers
        )));
    }
    let info = RankInfo { rank, host: host.clone(), workers: pool.workers as usize };
    let Some((engine, agreement)) = own else { return Ok(info) };
    if pool.engine != engine {
        return Err(refuse(
            "its Wasm engine compiles code differently from rank 0's (another wasmtime version, other engine \
             settings, or CPU features that change compiled code): its results could differ"
                .into(),
        ));
    }
    if pool.settings != agreement.settings {
        let (theirs, ours) = difference(&pool.settings, &agreement.settings);
        return Err(refuse(format!(
            "it was started with other pool settings than rank 0: {theirs} against rank 0's {ours}"
        )));
    }
    if pool.env != agreement.env {
        return Err(refuse(format!(
            "it grants tasks other values of environment variables than rank 0 (values are not shown): {}",
            env_difference(&pool.env, &agreement.env)
        )));
    }
    Ok(info)
}

/// The names of the variables whose values (or presence) differ between two
/// ranks' grants: the first 20, then how many more.
fn env_difference(theirs: &[EnvDigest], ours: &[EnvDigest]) -> String {
    fn by_name(vars: &[EnvDigest]) -> BTreeMap<&str, Vec<&[u8; 32]>> {
        let mut map: BTreeMap<&str, Vec<&[u8; 32]>> = BTreeMap::new();
        for var in vars {
            map.entry(var.name.as_str()).or_default().push(&var.value);
        }
        map
    }
    let (theirs, ours) = (by_name(theirs), by_name(ours));
    let mut names: Vec<&str> = theirs.keys().chain(ours.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    names.retain(|name| theirs.get(name) != ours.get(name));
    let shown = names.iter().take(20).map(|name| format!("{name:?}")).collect::<Vec<_>>().join(", ");
    match names.len() {
        0 => "their order".into(),
        n if n > 20 => format!("{shown} and {} more", n - 20),
        _ => shown,
    }
}

/// Where two settings texts differ: the differing middle of each, from
/// the start of the field where they part (at a `, ` or `{ `).
pub(crate) fn difference<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let mut start = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while start > 0
        && !(a.is_char_boundary(start) && matches!(&a[..start], p if p.ends_with(", ") || p.ends_with("{ ")))
    {
        start -= 1;
    }
    let tail = a[start..].bytes().rev().zip(b[start..].bytes().rev()).take_while(|(x, y)| x == y).count();
    let (mut end_a, mut end_b) = (a.len() - tail, b.len() - tail);
    while !a.is_char_boundary(end_a) || !b.is_char_boundary(end_b) {
        end_a += 1;
        end_b += 1;
    }
    let field_end = |text: &'a str, end: usize| {
        let rest = &text[end..];
        end + rest.find([',', ' ', '}']).unwrap_or(rest.len())
    };
    (&a[start..field_end(a, end_a)], &b[start..field_end(b, end_b)])
}

/// Attempts a sound rank may make at one input: the first, and the
/// retries of a worker process that died running it (the default number; a
/// rank configured with more may be found stalled after many crashes).
const ATTEMPTS: u32 = 1 + crate::DEFAULT_MAX_RETRIES;
/// Time per input besides its deadline: a new instance or worker process,
/// and the way back.
pub(crate) const PER_INPUT: Duration = Duration::from_millis(100);
/// How often rank 0 looks for jobs held past their time.
pub(crate) const PROGRESS_CHECK: Duration = Duration::from_millis(100);

/// The longest a sound rank may take to run `inputs` inputs one after
/// another, each under `deadline`: `None` without a deadline (a task
/// without one may rightly run for ever), or past what a `Duration` holds.
pub(crate) fn allowance(deadline: Option<Duration>, inputs: usize) -> Option<Duration> {
    let each = deadline?.checked_mul(ATTEMPTS)?.checked_add(PER_INPUT)?;
    each.checked_mul(u32::try_from(inputs).ok()?)
}

/// The jobs a rank holds (sent, not yet answered): how many, their inputs
/// (for the size of its next message), and how long they may take run one
/// after another (for when it must have answered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holding {
    jobs: usize,
    inputs: usize,
    /// The allowances of the jobs that have one, summed, in nanoseconds.
    timed: u128,
    /// Jobs without an allowance.
    untimed: usize,
}

impl Holding {
    /// A job of `inputs` inputs was sent to the rank.
    pub(crate) fn take(&mut self, inputs: usize, allowance: Option<Duration>) {
        self.jobs += 1;
        self.inputs = self.inputs.saturating_add(inputs);
        match allowance {
            Some(allowance) => self.timed = self.timed.saturating_add(allowance.as_nanos()),
            None => self.untimed += 1,
        }
    }

    /// The rank answered a job it was sent with [`take`](Self::take), or it
    /// was taken back.
    pub(crate) fn release(&mut self, inputs: usize, allowance: Option<Duration>) {
        self.jobs = self.jobs.saturating_sub(1);
        self.inputs = self.inputs.saturating_sub(inputs);
        match allowance {
            Some(allowance) => self.timed = self.timed.saturating_sub(allowance.as_nanos()),
            None => self.untimed = self.untimed.saturating_sub(1),
        }
    }

    /// The rank holds nothing any more (it was lost).
    pub(crate) fn clear(&mut self) {
        *self = Holding::default();
    }

    /// Jobs held.
    pub(crate) fn jobs(&self) -> usize {
        self.jobs
    }

    /// Their inputs.
    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }

    /// The latest time a sound rank answers the job just filed with
    /// [`take`](Self::take) at `now`: a rank runs its jobs in the order they
    /// came, so at worst after every job it holds, run one after another on
    /// a single worker, then `slack` (the rank timeout) for the way there
    /// and back. `None` if a job it holds has no deadline.
    pub(crate) fn due(&self, now: Instant, slack: Duration) -> Option<Instant> {
        if self.untimed > 0 {
            return None;
        }
        let held = Duration::from_nanos(u64::try_from(self.timed).ok()?);
        now.checked_add(held)?.checked_add(slack)
    }
}

/// Whether a job due at `due` is still held past it at `now`.
pub(crate) fn overdue(due: Option<Instant>, now: Instant) -> bool {
    due.is_some_and(|due| now > due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::{Down, JoinedPool, RankCounters, RemoteItem, RemoteResult, Up, encode, env_digests};
    use crate::runtime::instance::Outcome;
    use crate::sandbox::wasi::TaskOutput;
    use proptest::prelude::*;

    fn bounds(max_output: usize, max_memory: usize) -> MessageBounds {
        let limits = Limits { max_output, max_memory, ..Limits::default() };
        MessageBounds::new(&limits, &CompileLimits::default(), &Agreement::default())
    }

    fn counters() -> RankCounters {
        RankCounters { tasks: u64::MAX, busy: Duration::new(u64::MAX, 999_999_999), retries: u64::MAX }
    }

    #[test]
    fn a_sound_rank_s_largest_results_fit_the_bound_of_what_it_holds() {
        let b = bounds(1000, 1 << 20);
        let streams = TaskOutput { stdout: vec![1; 1000], stderr: vec![2; 1000] };
        let largest = Outcome { result: Ok(vec![7; 1000]), output: streams.clone() };
        let panic = TaskFailure::Panic { message: "p".repeat(64 << 10), location: "l".repeat(4 << 10) };
        let trap = TaskFailure::Trap { kind: "k".repeat(64 << 10), frames: vec!["f".repeat(1 << 10); 64] };
        let nested = TaskFailure::Init { task: "t".repeat(200), failure: Box::new(trap.clone()) };
        let failures = [panic, trap, nested].map(|f| Outcome { result: Err(f), output: streams.clone() });
        let mut outcomes = vec![largest];
        outcomes.extend(failures);
        let inputs = outcomes.len() as u64;
        let message = Up::Results(vec![RemoteResult { id: u64::MAX, outcomes: outcomes.clone() }], counters());
        let len = encode(&message).unwrap().len() as u64;
        assert!(len <= b.up(1, inputs), "{len} bytes against {}", b.up(1, inputs));
        // Split over one job per input, still within.
        let jobs = outcomes.into_iter().map(|o| RemoteResult { id: u64::MAX, outcomes: vec![o] }).collect();
        let len = encode(&Up::Results(jobs, counters())).unwrap().len() as u64;
        assert!(len <= b.up(inputs, inputs));
        // A rank holding nothing may say it is alive, and no more.
        let alive = encode(&Up::Alive(counters())).unwrap().len() as u64;
        assert!(alive <= b.up(0, 0));
        assert!(b.up(0, 0) < b.outcome(), "a rank holding nothing cannot send a result of any size");
    }

    #[test]
    fn the_bound_follows_the_limits_and_a_result_is_no_larger_than_memory() {
        let b = bounds(64 << 20, 256 << 20);
        assert_eq!(b.outcome(), (64 << 20) * 3 + OUTCOME_FRAMING);
        // Results are copied out of an instance's memory.
        let small_memory = bounds(64 << 20, 2 << 20);
        assert_eq!(small_memory.outcome(), (2 << 20) + (128 << 20) + OUTCOME_FRAMING);
        // A failure may take the place of a tiny result.
        assert_eq!(bounds(10, 1 << 20).outcome(), FAILURE_ROOM + 20 + OUTCOME_FRAMING);
        assert_eq!(b.up(2, 10), UP_FRAMING + 2 * RESULT_FRAMING + 10 * b.outcome());
        // No overflow, whatever the limits.
        assert_eq!(bounds(usize::MAX, usize::MAX).up(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn set_up_is_bounded_by_the_module_size_limit_and_rank_0_s_own_answer() {
        let compile = CompileLimits { max_module_bytes: 1 << 20, ..CompileLimits::default() };
        let agreement = Agreement {
            settings: "s".repeat(1000),
            env: env_digests(&[("A".to_owned(), "x".to_owned()), ("B".to_owned(), "y".to_owned())]),
        };
        let b = MessageBounds::new(&Limits::default(), &compile, &agreement);
        assert_eq!(b.setup(), (1 << 20) + SETUP_FRAMING);
        // An answer as long as rank 0's own, with every text at its longest, fits.
        let joined = Joined {
            protocol: CLUSTER_PROTOCOL,
            host: "h".repeat(HOST_BYTES),
            pool: Ok(JoinedPool {
                workers: u32::MAX,
                engine: u64::MAX,
                settings: agreement.settings.clone(),
                env: agreement.env.clone(),
            }),
        };
        assert!(encode(&joined).unwrap().len() as u64 <= b.joined());
        let failed =
            Joined { protocol: u32::MAX, host: "h".repeat(HOST_BYTES), pool: Err("e".repeat(SETUP_TEXT_BYTES)) };
        assert!(encode(&failed).unwrap().len() as u64 <= b.joined());
        let stop = crate::cluster::wire::Go::Stop("r".repeat(SETUP_TEXT_BYTES));
        assert!(encode(&stop).unwrap().len() as u64 <= b.go());
    }

    fn item(index: u64, args: Result<Vec<u8>, String>) -> RemoteItem {
        RemoteItem { index, args: args.map(serde_bytes::ByteBuf::from).map_err(TaskFailure::EncodeArguments) }
    }

    fn job(task: &str, items: Vec<RemoteItem>) -> RemoteJob {
        RemoteJob {
            id: u64::MAX,
            task: task.into(),
            export: format!("wasmpool_task_{task}"),
            seed_key: u64::MAX,
            deadline: Some(Duration::new(u64::MAX, 999_999_999)),
            fuel: Some(u64::MAX),
            items,
        }
    }

    proptest! {
        #[test]
        fn a_job_is_never_larger_than_its_length_bound(
            task in "[a-z_]{1,200}",
            items in proptest::collection::vec(
                (any::<u64>(), prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..300).prop_map(Ok::<Vec<u8>, String>),
                    ".{0,100}".prop_map(Err::<Vec<u8>, String>),
                ]),
                0..40,
            ),
        ) {
            let job = job(&task, items.into_iter().map(|(index, args)| item(index, args)).collect());
            let bound = job_len(&job);
            let len = encode(&Down::Batch(vec![job])).unwrap().len() as u64;
            prop_assert!(len <= DOWN_FRAMING + bound, "{len} bytes against {}", DOWN_FRAMING + bound);
        }

        #[test]
        fn cut_groups_fit_the_budget_keep_order_and_leave_out_only_what_cannot_be_sent(
            lens in proptest::collection::vec(0u64..3000, 0..60),
            framing in 0u64..200,
            budget in 1u64..4000,
            max_alone in 0u64..5000,
        ) {
            let (groups, refused) = cut(&lens, framing, budget, max_alone);
            let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
            prop_assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, each once");
            for group in &groups {
                prop_assert!(!group.is_empty());
                let size = framing + group.iter().map(|&p| lens[p]).sum::<u64>();
                prop_assert!(size <= budget || (group.len() == 1 && size <= max_alone), "{group:?}: {size}");
            }
            for &p in &refused {
                prop_assert!(framing + lens[p] > budget.max(max_alone));
            }
            seen.extend(&refused);
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn no_message_rank_0_sends_passes_the_bound_the_other_ranks_hold_it_to() {
        let b = bounds(64 << 20, 256 << 20);
        // A message takes jobs while it holds less than BATCH_BYTES: at
        // worst just under it, then the largest job cut allows.
        let largest_job = BATCH_BYTES.max(b.max_job());
        assert!(BATCH_BYTES - 1 + largest_job + DOWN_FRAMING <= b.down());
        // An input as large as an instance's memory is sent, alone; one
        // that passes what one job may hold is not.
        let framing = job_framing(&"t".repeat(200), &format!("wasmpool_task_{}", "t".repeat(200)));
        assert!(framing + item_len(Ok(256 << 20)) <= b.max_job());
        let fits = b.max_job() - framing;
        let (groups, refused) = cut(&[10, fits, fits + 1, 10], framing, BATCH_BYTES, b.max_job());
        assert_eq!(groups, vec![vec![0], vec![1], vec![3]]);
        assert_eq!(refused, vec![2]);
        // Many small inputs are cut into jobs of at most BATCH_BYTES.
        let (groups, _) = cut(&[1 << 20; 20], framing, BATCH_BYTES, b.max_job());
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), vec![7, 7, 6]);
    }

    #[test]
    fn answers_count_once_per_rank() {
        let mut answers = Answers::new(4);
        assert_eq!(answers.file(1), Answer::First);
        assert_eq!(answers.file(1), Answer::Again);
        assert_eq!(answers.file(1), Answer::Again);
        assert!(!answers.complete(), "rank 1 answering three times does not stand in for ranks 2 and 3");
        assert_eq!(answers.missing(), vec![2, 3]);
        assert_eq!(answers.file(0), Answer::Stranger);
        assert_eq!(answers.file(4), Answer::Stranger);
        assert_eq!(answers.file(usize::MAX), Answer::Stranger);
        assert_eq!(answers.file(3), Answer::First);
        assert_eq!(answers.file(2), Answer::First);
        assert!(answers.complete());
        assert!(answers.missing().is_empty());
        assert!(Answers::new(1).complete(), "a job of one rank waits for nobody");
    }

    fn joined(settings: &str, env: &[(&str, &str)]) -> Joined {
        let env: Vec<(String, String)> = env.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        Joined {
            protocol: CLUSTER_PROTOCOL,
            host: "node7".into(),
            pool: Ok(JoinedPool { workers: 4, engine: 1, settings: settings.into(), env: env_digests(&env) }),
        }
    }

    #[test]
    fn environment_values_are_compared_but_never_shown() {
        let own = Agreement {
            settings: "wasi env [\"API_TOKEN\", \"LANG\"]".into(),
            env: env_digests(&[
                ("API_TOKEN".to_owned(), "rank-zero-secret".to_owned()),
                ("LANG".to_owned(), "C".to_owned()),
            ]),
        };
        let same = joined(&own.settings, &[("API_TOKEN", "rank-zero-secret"), ("LANG", "C")]);
        let info = check(1, same, Some((1, &own))).unwrap();
        assert_eq!((info.rank, info.workers, info.host.as_str()), (1, 4, "node7"));
        let other = joined(&own.settings, &[("API_TOKEN", "rank-one-secret"), ("LANG", "C")]);
        let message = check(1, other, Some((1, &own))).unwrap_err().to_string();
        assert!(message.contains("rank 1 (host node7)") && message.contains("\"API_TOKEN\""), "{message}");
        assert!(!message.contains("LANG"), "only the differing variable is named: {message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn settings_differences_name_the_field() {
        let a = "limits Limits { deadline: None, max_memory: 33554432, max_stack: 1 }, mode A";
        let b = "limits Limits { deadline: None, max_memory: 268435456, max_stack: 1 }, mode A";
        assert_eq!(difference(a, b), ("max_memory: 33554432", "max_memory: 268435456"));
        assert_eq!(difference("mode A", "mode B"), ("mode A", "mode B"));
        let own = Agreement { settings: b.into(), env: Vec::new() };
        let message = check(2, joined(a, &[]), Some((1, &own))).unwrap_err().to_string();
        assert!(message.contains("max_memory: 33554432 against rank 0's max_memory: 268435456"), "{message}");
    }

    #[test]
    fn a_rank_cannot_claim_workers_without_end_or_speak_another_protocol() {
        let own = Agreement::default();
        let mut many = joined("", &[]);
        if let Ok(pool) = &mut many.pool {
            pool.workers = MAX_RANK_WORKERS + 1;
        }
        let message = check(1, many, Some((1, &own))).unwrap_err().to_string();
        assert!(message.contains("workers, more than"), "{message}");
        let mut old = joined("", &[]);
        old.protocol = 1;
        assert!(check(1, old, None).unwrap_err().to_string().contains("cluster protocol 1"));
        let failed = Joined { protocol: CLUSTER_PROTOCOL, host: "é".repeat(HOST_BYTES), pool: Err("x".into()) };
        let ClusterError::Refused { host, .. } = check(1, failed, None).unwrap_err() else { panic!("not a refusal") };
        assert!(host.len() <= HOST_BYTES, "a host name is cut, at a character boundary");
    }

    #[test]
    fn a_job_may_take_its_inputs_deadlines_and_retries_then_slack() {
        let deadline = Duration::from_millis(300);
        assert_eq!(allowance(Some(deadline), 1), Some(deadline * ATTEMPTS + PER_INPUT));
        assert_eq!(allowance(Some(deadline), 4), Some((deadline * ATTEMPTS + PER_INPUT) * 4));
        assert_eq!(allowance(None, 4), None, "without a deadline a task may rightly run for ever");
        assert_eq!(allowance(Some(Duration::MAX), 1), None);
        assert_eq!(allowance(Some(deadline), usize::MAX), None);
    }

    #[test]
    fn a_job_is_due_after_every_job_the_rank_held_before_it() {
        let now = Instant::now();
        let slack = Duration::from_secs(2);
        let second = Some(Duration::from_secs(1));
        let mut rank = Holding::default();
        rank.take(1, second);
        let first_due = rank.due(now, slack);
        assert_eq!(first_due, Some(now + Duration::from_secs(3)));
        rank.take(3, Some(Duration::from_secs(5)));
        assert_eq!(rank.due(now, slack), Some(now + Duration::from_secs(8)), "behind the first");
        assert_eq!((rank.jobs(), rank.inputs()), (2, 4));
        // Answered jobs no longer count.
        rank.release(1, second);
        rank.take(1, second);
        assert_eq!(rank.due(now, slack), Some(now + Duration::from_secs(8)));
        // A job without a deadline: nothing held after it is due.
        rank.take(1, None);
        assert_eq!(rank.due(now, slack), None);
        rank.release(1, None);
        assert_eq!(rank.due(now, slack), Some(now + Duration::from_secs(8)));
        rank.clear();
        assert_eq!((rank.jobs(), rank.inputs(), rank.due(now, slack)), (0, 0, Some(now + slack)));
    }

    #[test]
    fn a_rank_that_answers_but_keeps_a_job_past_its_time_is_found() {
        let sent = Instant::now();
        let mut rank = Holding::default();
        rank.take(1, allowance(Some(Duration::from_millis(300)), 1));
        let due = rank.due(sent, Duration::from_secs(2));
        // Heartbeats do not move a job's time: only its answer does.
        assert!(!overdue(due, sent + Duration::from_secs(3)));
        assert!(overdue(due, sent + Duration::from_millis(3001)));
        assert!(!overdue(None, sent + Duration::from_secs(1_000_000)), "a job without a deadline is never overdue");
    }
}
