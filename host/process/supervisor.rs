//! The host's side of one worker process: start it, hand it tasks one at a
//! time, notice when it dies, replace it and retry.

use super::watchdog::Watchdog;
use crate::channel::Outbox;
use crate::error::TaskFailure;
use crate::guest_call::Outcome;
use crate::probe::ProbeFailure;
use crate::sandbox::interrupt::{Interrupted, RunLimits, Watch};
use crate::stats::WorkerCounters;
use crate::sync::lock;
use crate::transport::FrameError;
use crate::transport::frame::{MAX_FRAME_LEN, queue_frame, read_frame, write_frame};
use crate::transport::messages::{AHEAD_BYTES, Hello, MAX_AHEAD, Reply, Request, RunRequest};
use crate::worker::{Ahead, ItemRunner, TaskContext};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a worker process that stopped talking gets to exit by itself
/// (and so report its own exit status) before it is killed. A worker that
/// has already died is reaped at once; one that reported a fatal error needs
/// the time its exit takes, which is over 200 ms on a slow or emulated
/// machine (a worker then showed as killed instead of its own status 3).
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Starts worker processes for one pool.
pub(crate) struct Spawner {
    pub executable: PathBuf,
    /// The arguments it is started with.
    pub args: Vec<OsString>,
    /// The handshake, the same for every worker but for its number.
    pub hello: Hello,
    /// Kills processes past their deadline or cancelled.
    pub watchdog: Watchdog,
    /// The pool's deadline, which bounds a new process's probe too.
    pub probe_deadline: Option<Duration>,
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
    pub fn arm(&self, watch: Watch) {
        lock(&self.watch).armed = Some(watch);
    }

    /// Stops watching.
    pub fn disarm(&self) {
        lock(&self.watch).armed = None;
    }

    /// The watchdog's check: kills the process if its task must stop.
    pub fn check_watch(&self) {
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
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }

    /// Kills the process (if any) without waiting for it.
    pub fn kill(&self) {
        if let Some(child) = self.lock().as_mut() {
            let _ = child.kill();
        }
    }

    /// Waits for the process, killing it if it has not exited within
    /// [`EXIT_GRACE`]; describes how it ended, e.g. "signal: 9 (SIGKILL)" or
    /// "exit status: 3".
    pub fn reap(&self) -> String {
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
    requests: BufWriter<ChildStdin>,
    replies: BufReader<ChildStdout>,
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
        let mut child = Command::new(&self.executable)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.executable.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err("the worker process has no pipes".into());
        };
        std::thread::Builder::new()
            .name(format!("wasmpool-worker-{id}-stderr"))
            .spawn(move || {
                // Keep draining even if our own stderr is gone, so the worker
                // never blocks on a full pipe.
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = writeln!(std::io::stderr().lock(), "[wasmpool worker {id}] {line}");
                }
            })
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

        let mut connection = Connection { requests: BufWriter::new(stdin), replies: BufReader::new(stdout) };
        let mut hello = self.hello.clone();
        hello.worker = id;
        write_frame(&mut connection.requests, &Request::Hello(Box::new(hello)))
            .map_err(|e| format!("handshake with worker {id} failed: {e}"))?;
        match read_frame::<Reply, _>(&mut connection.replies, MAX_FRAME_LEN) {
            Ok(Reply::Loaded) => Ok(connection),
            Ok(Reply::Refused { reason }) => Err(format!("worker {id} refused the pool: {reason}")),
            Ok(other) => Err(format!("worker {id} answered the handshake with {other:?}")),
            Err(e) => Err(format!("worker {id} did not complete the handshake: {e}")),
        }
    }

    /// Waits for the new process's probe of the module, under the pool's
    /// deadline (a start function that never ends is killed there).
    fn await_probe(&self, id: usize, slot: &ProcessSlot, mut connection: Connection) -> Result<Connection, SpawnError> {
        let run = RunLimits { deadline: self.probe_deadline, ..RunLimits::default() };
        let (reply, interrupted) = self.read_watched(slot, &mut connection, &run, None);
        if let Some(why) = interrupted {
            return Err(SpawnError::Probe(ProbeFailure::Instantiate(why.into())));
        }
        match reply {
            Ok(Reply::Ready { pid }) => {
                slot.pid.store(pid, Ordering::SeqCst);
                tracing::debug!(worker = id, pid, "worker process ready");
                Ok(connection)
            }
            Ok(Reply::ProbeFailed(failure)) => Err(SpawnError::Probe(failure)),
            Ok(other) => Err(SpawnError::Start(format!("worker {id} answered the handshake with {other:?}"))),
            Err(e) => Err(SpawnError::Start(format!("worker {id} did not complete the handshake: {e}"))),
        }
    }

    /// Reads the process's next reply under the watchdog's eye: the reply
    /// (or why none came) and, if the watchdog killed the process
    /// meanwhile, why.
    fn read_watched(
        &self,
        slot: &ProcessSlot,
        connection: &mut Connection,
        run: &RunLimits,
        mut outbox: Option<Box<dyn Outbox>>,
    ) -> (Result<Reply, FrameError>, Option<Interrupted>) {
        let watching = self.watchdog.watch(slot, run);
        // What the task sends comes ahead of its result. Waiting for room
        // at a slow listener is bounded by the task's deadline: the
        // watchdog kills the process then, which ends this loop too.
        let watch = Watch::start(run);
        let reply = loop {
            match read_frame::<Reply, _>(&mut connection.replies, MAX_FRAME_LEN) {
                Ok(Reply::Sent(sent)) => {
                    // Once the task is past its deadline (or cancelled) while
                    // waiting, the rest of what it sent is dropped unread.
                    if outbox.as_mut().is_some_and(|outbox| outbox.deliver(sent, &watch).is_err()) {
                        outbox = None;
                    }
                }
                other => break other,
            }
        };
        drop(watching);
        (reply, slot.take_interrupted())
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
}

impl ProcessRunner {
    /// A runner for worker `id`, starting its process now.
    pub fn start(
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
        })
    }

    /// Drops the pipes to the process (which then exits by itself, unless
    /// it is killed first); what was sent ahead is lost with them.
    fn disconnect(&mut self) {
        self.connection = None;
        self.sent_ahead = 0;
    }

    /// The request that runs one input.
    fn request(export: &str, args: &[u8], context: &TaskContext<'_>, run: &RunLimits) -> Request {
        Request::Run(RunRequest {
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
            queue_frame(&mut connection.requests, &Self::request(export, args, context, run)).map_err(failed)?;
            let mut bytes = 0;
            let mut sent = 0;
            for next in ahead.iter().take(MAX_AHEAD) {
                bytes += next.args.len();
                if bytes > AHEAD_BYTES {
                    break;
                }
                queue_frame(&mut connection.requests, &Self::request(export, next.args, &next.context, run))
                    .map_err(failed)?;
                sent += 1;
            }
            connection.requests.flush().map_err(|e| failed(e.into()))?;
            self.sent_ahead = sent;
        }
        let (reply, interrupted) = self.spawner.read_watched(&self.slot, connection, run, context.outbox());
        if let Some(why) = interrupted {
            // The process is dead or dying: replace it before the next task.
            self.disconnect();
            self.slot.reap();
            return Ok(match reply {
                Ok(Reply::Done(outcome)) => outcome,
                _ => Outcome::bare(Err(why.into())),
            });
        }
        match reply {
            Ok(Reply::Done(outcome)) => Ok(outcome),
            Ok(Reply::Fatal { reason }) => Err(reason),
            Ok(other) => Err(format!("worker {} sent {other:?} instead of a result", self.id)),
            Err(e) => Err(format!("worker {}: {e}", self.id)),
        }
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
