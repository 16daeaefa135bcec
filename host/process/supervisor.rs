//! The host's side of one worker process: start it, hand it tasks one at a
//! time, notice when it dies, replace it and retry.

use super::watchdog::Watchdog;
use crate::error::{LoadStep, TaskFailure};
use crate::runtime::instance::Outcome;
use crate::runtime::outbox::Outbox;
use crate::sandbox::interrupt::{Interrupted, RunLimits, Watch};
use crate::sandbox::limits::Limits;
use crate::sync::lock;
use crate::text::EscapedLine;
use crate::transport::frame::{queue_frame, read_frame, write_frame};
use crate::transport::messages::{
    AHEAD_BYTES, Hello, MAX_AHEAD, Reply, Request, RunRequest, unbelievable_outcome, unbelievable_sent,
};
use crate::worker::probe::ProbeFailure;
use crate::worker::stats::WorkerCounters;
use crate::worker::{Ahead, ItemRunner, TaskContext};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a worker process that stopped talking gets to exit by itself
/// (and so report its own exit status) before it is killed. A worker that
/// has already died is reaped at once; one that reported a fatal error needs
/// the time its exit takes, which is over 200 ms on a slow or emulated
/// machine (a worker then showed as killed instead of its own status 3).
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long a new worker process may take to start and load the compiled
/// module, before any guest code runs (that is the load deadline's). Only
/// host code runs here, so this is generous: it exists so that a worker
/// executable that never answers cannot hang the pool.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(60);

/// Starts worker processes for one pool.
pub(crate) struct Spawner {
    pub executable: PathBuf,
    /// The arguments it is started with.
    pub args: Vec<OsString>,
    /// The handshake, the same for every worker but for its number.
    pub hello: Hello,
    /// Kills processes past their deadline or cancelled.
    pub watchdog: Watchdog,
    /// How long a new process's probe (its load-time guest code) may take.
    pub load_deadline: Duration,
    /// The largest reply read (`messages::max_reply_len`).
    pub max_reply: u32,
}

/// Why a worker process could not be started.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The process could not be started or did not complete the handshake.
    Start(String),
    /// It started, but the module failed its probe there.
    Probe(ProbeFailure),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Start(reason) => f.write_str(reason),
            SpawnError::Probe(failure) => write!(f, "{failure}"),
        }
    }
}

/// The process currently serving one worker slot, shared with the pool so
/// that dropping the pool can kill it whatever the worker thread is doing.
#[derive(Default)]
pub(crate) struct ProcessSlot {
    child: Mutex<Option<Child>>,
    pid: AtomicU32,
    watch: Mutex<SlotWatch>,
}

/// What the watchdog knows of one slot.
#[derive(Default)]
struct SlotWatch {
    /// The running task's deadline and cancel flag, while one runs.
    armed: Option<Watch>,
    /// Why the watchdog killed the process, if it did.
    interrupted: Option<Interrupted>,
}

impl ProcessSlot {
    /// Starts watching the running task.
    pub(crate) fn arm(&self, watch: Watch) {
        lock(&self.watch).armed = Some(watch);
    }

    /// Stops watching.
    pub(crate) fn disarm(&self) {
        lock(&self.watch).armed = None;
    }

    /// The watchdog's check: kills the process if its task must stop.
    pub(crate) fn check_watch(&self) {
        let mut watch = lock(&self.watch);
        if let Some(why) = watch.armed.as_ref().and_then(Watch::check) {
            watch.interrupted = Some(why);
            self.kill();
        }
    }

    /// Why the watchdog killed the process since the last call, if it did.
    fn take_interrupted(&self) -> Option<Interrupted> {
        lock(&self.watch).interrupted.take()
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        lock(&self.child)
    }

    /// The process id of the live worker, if any.
    pub(crate) fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }

    /// Kills the process (if any) without waiting for it.
    pub(crate) fn kill(&self) {
        if let Some(child) = self.lock().as_mut() {
            let _ = child.kill();
        }
    }

    /// Waits for the process, killing it if it has not exited within
    /// [`EXIT_GRACE`]; describes how it ended, e.g. "signal: 9 (SIGKILL)" or
    /// "exit status: 3".
    pub(crate) fn reap(&self) -> String {
        self.pid.store(0, Ordering::SeqCst);
        let Some(mut child) = self.lock().take() else { return "no process".into() };
        let deadline = Instant::now() + EXIT_GRACE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    let _ = child.kill();
                    break child.wait();
                }
            }
        };
        status.map_or_else(|e| format!("unknown ({e})"), |s| s.to_string())
    }
}

/// The pipes to a live worker process.
struct Connection {
    requests: BufWriter<Box<dyn Write + Send>>,
    replies: BufReader<Box<dyn Read + Send>>,
}

impl Connection {
    fn new(requests: impl Write + Send + 'static, replies: impl Read + Send + 'static) -> Self {
        Connection { requests: BufWriter::new(Box::new(requests)), replies: BufReader::new(Box::new(replies)) }
    }
}

/// The pauses before each new try of a worker process the operating
/// system failed to start: a refusal that may pass (EAGAIN at the process
/// limit on Linux; an internal error of CreateProcess, seen once under
/// Wine) should not fail a pool.
const SPAWN_RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(200)];

/// Whether a failure to start a process of this kind may pass: a missing
/// or forbidden executable will not.
fn may_pass(kind: std::io::ErrorKind) -> bool {
    !matches!(kind, std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
}

impl Spawner {
    /// Starts worker `id`'s process, forwards its stderr, and completes the
    /// handshake. The process is stored in `slot` before the handshake, so
    /// it can be killed while starting.
    fn spawn(&self, id: usize, slot: &ProcessSlot, closing: &AtomicBool) -> Result<Connection, SpawnError> {
        let connection = self.start_process(id, slot, closing).map_err(SpawnError::Start)?;
        self.await_probe(id, slot, connection)
    }

    /// Starts the process and waits until it has loaded the module.
    fn start_process(&self, id: usize, slot: &ProcessSlot, closing: &AtomicBool) -> Result<Connection, String> {
        let mut command = Command::new(&self.executable);
        command.args(&self.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut started = command.spawn();
        for pause in SPAWN_RETRY_PAUSES {
            match &started {
                Err(e) if may_pass(e.kind()) => {
                    tracing::debug!(worker = id, error = %e, "the worker process did not start; trying again");
                    std::thread::sleep(pause);
                    started = command.spawn();
                }
                _ => break,
            }
        }
        let mut child = started.map_err(|e| format!("cannot start {}: {e}", self.executable.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err("the worker process has no pipes".into());
        };
        std::thread::Builder::new()
            .name(format!("wasmpool-worker-{id}-stderr"))
            .spawn(move || forward_stderr(id, stderr, &mut std::io::stderr()))
            .map_err(|e| format!("cannot start the stderr reader: {e}"))?;
        {
            let mut guard = slot.lock();
            if closing.load(Ordering::SeqCst) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the pool is closing".into());
            }
            *guard = Some(child);
        }

        let mut connection = Connection::new(stdin, stdout);
        let mut hello = self.hello.clone();
        hello.worker = id;
        // Host code only, but bounded all the same: a process that never
        // answers is killed.
        let watching =
            self.watchdog.watch(slot, &RunLimits { deadline: Some(HANDSHAKE_LIMIT), ..RunLimits::default() });
        let reply = write_frame(&mut connection.requests, &Request::Hello(Box::new(hello)))
            .map_err(|e| format!("handshake with worker {id} failed: {e}"))
            .and_then(|()| {
                read_frame::<Reply, _>(&mut connection.replies, self.max_reply)
                    .map_err(|e| format!("worker {id} did not complete the handshake: {e}"))
            });
        drop(watching);
        if slot.take_interrupted().is_some() {
            return Err(format!("worker {id} did not complete the handshake within {HANDSHAKE_LIMIT:?}"));
        }
        match reply? {
            Reply::Loaded => Ok(connection),
            Reply::Refused { reason } => Err(format!("worker {id} refused the pool: {reason}")),
            other => Err(format!("worker {id} answered the handshake with {}", other.kind())),
        }
    }

    /// Waits for the new process's probe of the module, under the load
    /// deadline: a step of guest code that does not return by then (the
    /// process names each as it starts it) is killed there.
    fn await_probe(&self, id: usize, slot: &ProcessSlot, mut connection: Connection) -> Result<Connection, SpawnError> {
        let run = RunLimits { deadline: Some(self.load_deadline), ..RunLimits::default() };
        let watching = self.watchdog.watch(slot, &run);
        let mut step = LoadStep::StartFunction;
        let reply = loop {
            match read_frame::<Reply, _>(&mut connection.replies, self.max_reply) {
                Ok(Reply::Probing(next)) => step = next,
                other => break other,
            }
        };
        drop(watching);
        if slot.take_interrupted().is_some() {
            return Err(SpawnError::Probe(ProbeFailure::Timeout { step, limit: self.load_deadline }));
        }
        match reply {
            Ok(Reply::Ready) => {
                // The process id the operating system gave it, not one the
                // process (whose guest code has run) might claim.
                let pid = slot.lock().as_ref().map_or(0, Child::id);
                slot.pid.store(pid, Ordering::SeqCst);
                tracing::debug!(worker = id, pid, "worker process ready");
                Ok(connection)
            }
            Ok(Reply::ProbeFailed(failure)) => Err(SpawnError::Probe(failure)),
            Ok(other) => Err(SpawnError::Start(format!("worker {id} answered the handshake with {}", other.kind()))),
            Err(e) => Err(SpawnError::Start(format!("worker {id} did not complete the handshake: {e}"))),
        }
    }

    /// Reads the replies about input `id` under the watchdog's eye: its
    /// outcome (or why none came) and, if the watchdog killed the process
    /// meanwhile, why.
    fn read_outcome(
        &self,
        slot: &ProcessSlot,
        connection: &mut Connection,
        run: &RunLimits,
        id: u64,
        outbox: Option<Box<dyn Outbox>>,
    ) -> (Result<Outcome, String>, Option<Interrupted>) {
        let watching = self.watchdog.watch(slot, run);
        let limits = &self.hello.instance.limits;
        let outcome = receive(&mut connection.replies, self.max_reply, limits, id, outbox, &Watch::start(run));
        drop(watching);
        (outcome, slot.take_interrupted())
    }
}

/// Longest line of a worker process's stderr shown, in bytes; the rest of
/// a longer line is dropped unread, so a process writing without line
/// breaks costs the host no memory.
const MAX_STDERR_LINE: usize = 8 * 1024;

/// Copies what worker `id` writes to its stderr to `out`, line by line,
/// each marked with the worker, escaped (a line may quote the guest) and
/// cut at [`MAX_STDERR_LINE`]. Keeps draining even if `out` fails, so the
/// worker never blocks on a full pipe.
fn forward_stderr(id: usize, stderr: impl Read, out: &mut impl Write) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let Ok(read) = (&mut reader).take(MAX_STDERR_LINE as u64).read_until(b'\n', &mut line) else { return };
        if read == 0 {
            return;
        }
        let whole = line.last() == Some(&b'\n');
        let mut cut = 0u64;
        if !whole && read == MAX_STDERR_LINE {
            cut = skip_line(&mut reader);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let _ = match cut {
            0 => writeln!(out, "[wasmpool worker {id}] {}", EscapedLine(text)),
            cut => writeln!(out, "[wasmpool worker {id}] {} … ({cut} more bytes cut)", EscapedLine(text)),
        };
    }
}

/// Reads past the rest of the current line; how many bytes that was.
fn skip_line(reader: &mut impl BufRead) -> u64 {
    let mut skipped = 0u64;
    loop {
        let Ok(buffer) = reader.fill_buf() else { return skipped };
        if buffer.is_empty() {
            return skipped;
        }
        let (used, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        reader.consume(used);
        skipped += used as u64 - u64::from(done);
        if done {
            return skipped;
        }
    }
}

/// Reads the replies about input `id` up to its outcome, handing what the
/// task sends on the way to `outbox`. Anything else (a reply about another
/// input, a reply out of place, a broken frame, a message or outcome over
/// `limits` that a sound worker would have refused, the end of the stream)
/// is why the process cannot be trusted with more, as an error.
fn receive(
    replies: &mut impl Read,
    max_reply: u32,
    limits: &Limits,
    id: u64,
    mut outbox: Option<Box<dyn Outbox>>,
    watch: &Watch,
) -> Result<Outcome, String> {
    let out_of_turn =
        |kind: &str, other: u64| format!("the worker sent a {kind} reply about input {other} while input {id} ran");
    // What the task sends comes ahead of its result. Waiting for room at a
    // slow listener is bounded by the task's deadline: the watchdog kills
    // the process then, which ends this loop too.
    loop {
        match read_frame::<Reply, _>(replies, max_reply).map_err(|e| e.to_string())? {
            Reply::Sent { id: from, sent } if from == id => {
                if let Some(why) = unbelievable_sent(&sent, limits) {
                    return Err(format!("the worker sent {why}"));
                }
                // Once the task is past its deadline (or cancelled) while
                // waiting, the rest of what it sent is dropped unread.
                if outbox.as_mut().is_some_and(|outbox| outbox.deliver(sent, watch).is_err()) {
                    outbox = None;
                }
            }
            Reply::Done { id: of, outcome } if of == id => {
                return match unbelievable_outcome(&outcome, limits.max_output) {
                    Some(why) => Err(format!("the worker sent {why}")),
                    None => Ok(outcome),
                };
            }
            Reply::Sent { id: from, .. } => return Err(out_of_turn("Sent", from)),
            Reply::Done { id: of, .. } => return Err(out_of_turn("Done", of)),
            Reply::Fatal { reason } => return Err(reason),
            other => return Err(format!("the worker sent {} instead of a result", other.kind())),
        }
    }
}

/// Runs tasks in worker processes, replacing a process that dies.
pub(crate) struct ProcessRunner {
    pub id: usize,
    pub spawner: Arc<Spawner>,
    pub slot: Arc<ProcessSlot>,
    pub closing: Arc<AtomicBool>,
    /// How many times a task is run again after its worker died.
    pub max_retries: u32,
    /// Where retries are counted.
    pub counters: Arc<WorkerCounters>,
    connection: Option<Connection>,
    /// How many of the inputs after the current one are already in the
    /// pipe: the process starts each as soon as it has answered the one
    /// before.
    sent_ahead: usize,
    /// The id the next input sent on this connection gets.
    next_id: u64,
    /// How many inputs the process has answered on this connection: the id
    /// of the one whose reply comes next.
    answered: u64,
}

impl ProcessRunner {
    /// A runner for worker `id`, starting its process now.
    pub(crate) fn start(
        id: usize,
        spawner: Arc<Spawner>,
        slot: Arc<ProcessSlot>,
        closing: Arc<AtomicBool>,
        max_retries: u32,
        counters: Arc<WorkerCounters>,
    ) -> Result<Self, SpawnError> {
        spawner.watchdog.register(&slot);
        let connection = spawner.spawn(id, &slot, &closing).inspect_err(|_| {
            slot.reap();
        })?;
        Ok(ProcessRunner {
            id,
            spawner,
            slot,
            closing,
            max_retries,
            counters,
            connection: Some(connection),
            sent_ahead: 0,
            next_id: 0,
            answered: 0,
        })
    }

    /// Drops the pipes to the process (which then exits by itself, unless
    /// it is killed first); what was sent ahead is lost with them.
    fn disconnect(&mut self) {
        self.connection = None;
        self.sent_ahead = 0;
        self.next_id = 0;
        self.answered = 0;
    }

    /// The request that runs one input as input `id` of the connection.
    fn request(id: u64, export: &str, args: &[u8], context: &TaskContext<'_>, run: &RunLimits) -> Request {
        Request::Run(RunRequest {
            id,
            export: export.to_owned(),
            args: args.to_vec(),
            seed: context.seed,
            fuel: run.fuel,
            messages: context.listeners.wants_messages(),
            progress: context.listeners.wants_progress(),
        })
    }

    /// One attempt: `Ok` with the task's outcome (the watchdog's verdict if
    /// it killed the process), or `Err` with why the worker process is
    /// unusable (it died, or broke the protocol).
    fn attempt(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        run: &RunLimits,
        ahead: &Ahead<'_>,
    ) -> Result<Outcome, String> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self
                .connection
                .insert(self.spawner.spawn(self.id, &self.slot, &self.closing).map_err(|e| e.to_string())?),
        };
        if self.sent_ahead > 0 {
            // This input is in the pipe already, and may be running.
            self.sent_ahead -= 1;
        } else {
            // The process has answered everything sent so far: send this
            // input and the next ones, in one write.
            let id = self.id;
            let failed = |e| format!("worker {id}: {e}");
            let request = Self::request(self.next_id, export, args, context, run);
            queue_frame(&mut connection.requests, &request).map_err(failed)?;
            self.next_id += 1;
            let mut bytes = 0;
            let mut sent = 0;
            for next in ahead.iter().take(MAX_AHEAD) {
                bytes += next.args.len();
                if bytes > AHEAD_BYTES {
                    break;
                }
                let request = Self::request(self.next_id, export, next.args, &next.context, run);
                queue_frame(&mut connection.requests, &request).map_err(failed)?;
                self.next_id += 1;
                sent += 1;
            }
            connection.requests.flush().map_err(|e| failed(e.into()))?;
            self.sent_ahead = sent;
        }
        // Inputs are answered in the order they were sent: this one's id
        // is the count answered so far.
        let expected = self.answered;
        let (outcome, interrupted) = self.spawner.read_outcome(&self.slot, connection, run, expected, context.outbox());
        if let Some(why) = interrupted {
            // The process is dead or dying: replace it before the next task.
            self.disconnect();
            self.slot.reap();
            return Ok(outcome.unwrap_or_else(|_| Outcome::bare(Err(why.into()))));
        }
        self.answered += 1;
        outcome.map_err(|cause| format!("worker {}: {cause}", self.id))
    }
}

impl ItemRunner for ProcessRunner {
    fn run(
        &mut self,
        export: &str,
        args: &[u8],
        context: &TaskContext<'_>,
        run: &RunLimits,
        ahead: Ahead<'_>,
    ) -> Outcome {
        let mut attempts = 0u32;
        loop {
            if self.closing.load(Ordering::SeqCst) {
                self.forget_ahead();
                return Outcome::bare(Err(TaskFailure::PoolClosed));
            }
            let cause = match self.attempt(export, args, context, run, &ahead) {
                Ok(outcome) => return outcome,
                Err(cause) => cause,
            };
            // Close the pipes first: a live but confused worker then exits by
            // itself within the grace period, with a status of its own.
            self.disconnect();
            let status = self.slot.reap();
            attempts += 1;
            if self.closing.load(Ordering::SeqCst) {
                return Outcome::bare(Err(TaskFailure::PoolClosed));
            }
            if attempts > self.max_retries {
                // Leave the slot with a live process, as the pool had it
                // before this task (if that fails, the next task tries again).
                match self.spawner.spawn(self.id, &self.slot, &self.closing) {
                    Ok(connection) => self.connection = Some(connection),
                    Err(_) => {
                        self.slot.reap();
                    }
                }
                return Outcome::bare(Err(TaskFailure::WorkerCrashed { worker: self.id, attempts, status, cause }));
            }
            self.counters.retried();
            tracing::warn!(worker = self.id, attempts, %status, %cause, "worker process died; retrying the task on a new one");
        }
    }

    fn forget_ahead(&mut self) {
        if self.sent_ahead > 0 {
            // The process has started those inputs, or is about to: stop it
            // rather than wait for results nobody wants. The next task
            // starts a new process.
            self.slot.kill();
            self.disconnect();
            self.slot.reap();
        }
    }
}

impl Drop for ProcessRunner {
    fn drop(&mut self) {
        // Closing stdin asks the worker to exit; reaping makes sure it has.
        self.connection = None;
        self.slot.reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::code::CodeKind;
    use crate::runtime::engine::{Allocator, EngineSettings};
    use crate::runtime::instance::InstanceConfig;
    use crate::sandbox::wasi::TaskOutput;
    use crate::transport::frame::read_frame;
    use crate::transport::messages::{MAX_FAILURE_TEXT, PROTOCOL_VERSION};
    use crate::worker::executor::InstanceMode;
    use crate::worker::jobs::{Item, TaskTarget};

    fn framed(replies: &[Reply]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for reply in replies {
            write_frame(&mut bytes, reply).unwrap();
        }
        bytes
    }

    fn done(id: u64, byte: u8) -> Reply {
        Reply::Done { id, outcome: Outcome::bare(Ok(vec![byte])) }
    }

    #[test]
    fn only_the_reply_about_the_running_input_is_its_outcome() {
        let receive_from = |replies: &[Reply], id| {
            receive(&mut framed(replies).as_slice(), 1 << 20, &limits(), id, None, &Watch::default())
        };
        assert_eq!(receive_from(&[done(3, 7)], 3).unwrap().result, Ok(vec![7]));
        let sent = Reply::Sent { id: 3, sent: crate::runtime::outbox::Sent::Progress { done: 1, total: 2 } };
        assert_eq!(receive_from(&[sent, done(3, 7)], 3).unwrap().result, Ok(vec![7]));

        let why = receive_from(&[done(4, 7)], 3).unwrap_err();
        assert!(why.contains("a Done reply about input 4 while input 3 ran"), "{why}");
        let early = Reply::Sent { id: 4, sent: crate::runtime::outbox::Sent::Progress { done: 1, total: 2 } };
        let why = receive_from(&[early, done(3, 7)], 3).unwrap_err();
        assert!(why.contains("a Sent reply about input 4 while input 3 ran"), "{why}");
        let why = receive_from(&[Reply::Loaded], 0).unwrap_err();
        assert!(why.contains("sent Loaded instead of a result"), "{why}");
        assert!(receive_from(&[], 0).unwrap_err().contains("ended"));
    }

    #[test]
    fn a_workers_stderr_is_shown_line_by_line_escaped_and_cut() {
        let mut long = vec![b'x'; MAX_STDERR_LINE + 100];
        long.extend_from_slice(b"\nnext\x1b[2J\r\nlast");
        let mut shown = Vec::new();
        forward_stderr(3, long.as_slice(), &mut shown);
        let shown = String::from_utf8(shown).unwrap();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        assert!(lines[0].starts_with("[wasmpool worker 3] xxx") && lines[0].ends_with("x … (100 more bytes cut)"));
        assert_eq!(lines[0].len(), "[wasmpool worker 3] ".len() + MAX_STDERR_LINE + " … (100 more bytes cut)".len());
        assert_eq!(lines[1], "[wasmpool worker 3] next\\u{1b}[2J");
        assert_eq!(lines[2], "[wasmpool worker 3] last");
    }

    #[test]
    fn only_a_start_failure_that_may_pass_is_tried_again() {
        use std::io::ErrorKind;
        assert!(!may_pass(ErrorKind::NotFound), "a missing executable fails at once");
        assert!(!may_pass(ErrorKind::PermissionDenied));
        assert!(may_pass(ErrorKind::WouldBlock), "EAGAIN at the process limit");
        assert!(may_pass(ErrorKind::Other), "Windows' internal errors");
    }

    #[test]
    fn the_reply_limit_is_applied_to_outcomes() {
        let big = Reply::Done { id: 0, outcome: Outcome::bare(Ok(vec![0; 4096])) };
        let why = receive(&mut framed(&[big]).as_slice(), 1024, &limits(), 0, None, &Watch::default()).unwrap_err();
        assert!(why.contains("exceeds the limit of 1024 bytes"), "{why}");
    }

    fn limits() -> Limits {
        Limits { max_output: 100, max_message: 10, ..Limits::default() }
    }

    #[test]
    fn what_a_sound_worker_would_have_refused_is_not_believed() {
        let receive_from =
            |reply: Reply| receive(&mut framed(&[reply]).as_slice(), 1 << 20, &limits(), 0, None, &Watch::default());
        let result = Reply::Done { id: 0, outcome: Outcome::bare(Ok(vec![0; 101])) };
        assert!(receive_from(result).unwrap_err().contains("a result of 101 bytes, over the output limit of 100"));
        let printed = Outcome { result: Ok(vec![]), output: TaskOutput { stdout: vec![0; 101], stderr: vec![] } };
        let why = receive_from(Reply::Done { id: 0, outcome: printed }).unwrap_err();
        assert!(why.contains("a stdout of 101 bytes"), "{why}");
        let message = Reply::Sent { id: 0, sent: crate::runtime::outbox::Sent::Message(vec![0; 11]) };
        assert!(receive_from(message).unwrap_err().contains("a message of 11 bytes, over the message limit of 10"));
        let wordy = Outcome::bare(Err(TaskFailure::Failed("x".repeat(MAX_FAILURE_TEXT + 1))));
        let why = receive_from(Reply::Done { id: 0, outcome: wordy }).unwrap_err();
        assert!(why.contains("a failure of"), "{why}");
        // At the limits, all is believed.
        let full =
            Outcome { result: Ok(vec![0; 100]), output: TaskOutput { stdout: vec![0; 100], stderr: vec![0; 100] } };
        assert!(receive_from(Reply::Done { id: 0, outcome: full }).is_ok());
    }

    #[test]
    fn a_frame_of_deeply_nested_failures_is_refused_not_followed() {
        // Reply::Done { id: 0, outcome: Outcome { result: Err(<nested>), output: empty } },
        // built by hand: the `Done` variant, id 0, `Err`, the failure, two empty streams.
        let done =
            postcard::to_allocvec(&Reply::Done { id: 0, outcome: Outcome::bare(Err(TaskFailure::Cancelled)) }).unwrap();
        let failure_at = done.len() - 3;
        let mut payload = done[..failure_at].to_vec();
        payload.extend(crate::error::tests::nested_init_failures(10_000));
        payload.extend_from_slice(&done[failure_at + 1..]);
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend(payload);
        assert_eq!(frame, std::fs::read(DEEP_FRAME_SEED).unwrap(), "the fuzz seed is this frame");
        let why = receive(&mut frame.as_slice(), 1 << 20, &limits(), 0, None, &Watch::default()).unwrap_err();
        assert!(why.contains("does not decode"), "{why}");
    }

    /// The same frame among the `frames` fuzz target's seeds.
    const DEEP_FRAME_SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/frames/deeply_nested_failures");

    /// A runner whose "process" is a thread on the other end of two pipes.
    fn fake_runner(requests: std::io::PipeWriter, replies: std::io::PipeReader) -> ProcessRunner {
        let settings = EngineSettings {
            allocator: Allocator::OnDemand,
            component: false,
            instance_slots: 1,
            max_memory: 1 << 20,
            max_table_elements: 100,
            max_stack: 1 << 20,
            epoch_interruption: false,
            consume_fuel: false,
        };
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            wasmpool_version: String::new(),
            worker: 0,
            code: Vec::new(),
            kind: CodeKind::Module,
            engine: settings,
            instance: InstanceConfig {
                limits: Default::default(),
                epoch_checks: false,
                wasi: None,
                stack_pointer: None,
                reset: None,
                component_reset: false,
                component_start: None,
            },
            mode: InstanceMode::FreshPerTask,
            init: None,
        };
        let spawner = Spawner {
            // Never started: a replacement process cannot be had.
            executable: PathBuf::from("/nonexistent/wasmpool-worker"),
            args: Vec::new(),
            hello,
            watchdog: Watchdog::start().unwrap(),
            load_deadline: Duration::from_secs(5),
            max_reply: 1 << 20,
        };
        ProcessRunner {
            id: 0,
            spawner: Arc::new(spawner),
            slot: Arc::default(),
            closing: Arc::default(),
            max_retries: 0,
            counters: Arc::default(),
            connection: Some(Connection::new(requests, replies)),
            sent_ahead: 0,
            next_id: 0,
            answered: 0,
        }
    }

    #[test]
    fn a_worker_answering_out_of_order_is_not_believed() {
        let (from_host, to_fake) = std::io::pipe().unwrap();
        let (from_fake, to_host) = std::io::pipe().unwrap();
        // The fake takes the input and the one sent ahead with it, and
        // answers the second first.
        let fake = std::thread::spawn(move || {
            let mut from_host = from_host;
            let mut to_host = to_host;
            let ids: Vec<u64> = (0..2)
                .map(|_| match read_frame::<Request, _>(&mut from_host, 1 << 20).unwrap() {
                    Request::Run(run) => run.id,
                    Request::Hello(_) => panic!("no handshake on this connection"),
                })
                .collect();
            assert_eq!(ids, [0, 1], "inputs are numbered in the order they are sent");
            write_frame(&mut to_host, &done(1, 11)).unwrap();
            // The host may have dropped the pipes by now (it should: the
            // first answer was about the wrong input), so this may fail.
            let _ = write_frame(&mut to_host, &done(0, 10));
        });
        let mut runner = fake_runner(to_fake, from_fake);
        let target = TaskTarget {
            name: "t".into(),
            export: "wasmpool_task_t".into(),
            seed_key: 0,
            listeners: Default::default(),
        };
        let next = [Item { index: 1, args: Ok(vec![1]) }];
        let outcome = runner.run(
            &target.export,
            &[0],
            &TaskContext::of(&target, 0),
            &RunLimits::default(),
            Ahead::new(&next, &target),
        );
        fake.join().unwrap();
        match outcome.result {
            Err(TaskFailure::WorkerCrashed { cause, attempts: 1, .. }) => {
                assert!(cause.contains("a Done reply about input 1 while input 0 ran"), "{cause}")
            }
            other => panic!("the out-of-order answer was taken: {other:?}"),
        }
    }
}
