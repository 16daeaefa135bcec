//! Opt-in WASI (preview 1): guests built for `wasm32-wasip1` use Rust `std`
//! as usual, with nothing granted unless the pool grants it.
//!
//! With [`PoolBuilder::wasi`](crate::PoolBuilder::wasi), a module may import
//! `wasi_snapshot_preview1`. Each task then gets a fresh WASI context:
//! - stdout and stderr are captured per task, up to the pool's output limit
//!   (a task writing more is stopped with [`LimitExceeded::Output`]), and
//!   are never mixed into the host's own output; see
//!   [`TaskRef::call_captured`](crate::TaskRef::call_captured);
//! - stdin is empty; there are no arguments, no environment variables, no
//!   preopened directories and no sockets, unless granted one by one;
//! - the clocks answer `ENOTCAPABLE` (76) unless granted, and so does
//!   sleeping (`poll_oneoff` on a clock), which needs the monotonic clock;
//!   a task that then fails is reported as
//!   [`TaskFailure::NotGranted`](crate::TaskFailure::NotGranted), naming
//!   the capability and how to grant it; a granted sleep still ends at the
//!   task's deadline;
//! - `random_get` gives the task's own seeded stream (see [`crate::seed`]),
//!   not the host's entropy, so seeded results repeat; `HashMap`'s hash
//!   keys come from it too.
//!
//! The implementation is wasmtime's own (`wasmtime-wasi`); wasmpool only
//! decides what each task is given.

use crate::error::{Capability, LimitExceeded};
use crate::sandbox::interrupt::Watch;
use crate::seed::TaskRandom;
use crate::text::EscapedText;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Caller, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// The import module name of WASI preview 1.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno: "capabilities insufficient".
const ERRNO_NOTCAPABLE: i32 = 76;
/// WASI errno: "invalid argument".
const ERRNO_INVAL: i32 = 28;
/// WASI errno: "bad address".
const ERRNO_FAULT: i32 = 21;
/// WASI errno: "not supported".
const ERRNO_NOTSUP: i32 = 58;

/// Most WASI handles (open files and folders, streams, pollables, and the
/// like) one task may hold at once: each open file is a descriptor of the
/// host's process, which thread workers share (wasmtime's default allows a
/// million). CPython holds a few dozen.
pub(crate) const MAX_HANDLES: usize = 256;

/// The limit a task ran into if `error` is its table of WASI handles being
/// full ([`MAX_HANDLES`]).
pub(crate) fn handles_exceeded(error: &wasmtime::Error) -> Option<LimitExceeded> {
    matches!(error.downcast_ref::<wasmtime::component::ResourceTableError>(), Some(ResourceTableError::Full))
        .then_some(LimitExceeded::Handles { limit: MAX_HANDLES as u64 })
}

/// What a WASI task may use beyond computing; nothing by default.
///
/// ```
/// let wasi = wasmpool::WasiConfig::new().env("LANG", "C").wall_clock();
/// # let _ = wasi;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasiConfig {
    env: Vec<(String, String)>,
    args: Vec<String>,
    dirs: Vec<PreopenedDir>,
    wall_clock: bool,
    monotonic_clock: bool,
}

/// A host folder a WASI task may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PreopenedDir {
    host: PathBuf,
    guest: String,
    writable: bool,
}

impl WasiConfig {
    /// Nothing granted: no environment, arguments, folders or clocks.
    pub fn new() -> Self {
        WasiConfig::default()
    }

    /// Grants one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Appends one command-line argument (`std::env::args`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Grants read-only access to the host folder `host`, seen by the guest
    /// as `guest`.
    pub fn read_only_dir(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(PreopenedDir { host: host.into(), guest: guest.into(), writable: false });
        self
    }

    /// Grants read and write access to the host folder `host`, seen by the
    /// guest as `guest`.
    pub fn writable_dir(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(PreopenedDir { host: host.into(), guest: guest.into(), writable: true });
        self
    }

    /// Grants the wall clock (`SystemTime::now`).
    pub fn wall_clock(mut self) -> Self {
        self.wall_clock = true;
        self
    }

    /// Grants the monotonic clock (`Instant::now`).
    pub fn monotonic_clock(mut self) -> Self {
        self.monotonic_clock = true;
        self
    }

    /// The granted environment variables, `(name, value)`.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn env_vars(&self) -> &[(String, String)] {
        &self.env
    }

    /// These grants with every environment variable's value replaced by
    /// `<not shown>` (names kept): for text that may be printed, such as
    /// the settings cluster ranks compare, as values may be secrets.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn without_env_values(&self) -> WasiConfig {
        let env = self.env.iter().map(|(name, _)| (name.clone(), "<not shown>".to_owned())).collect();
        WasiConfig { env, ..self.clone() }
    }

    /// Checks that every granted folder can be opened.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for dir in &self.dirs {
            if !dir.host.is_dir() {
                return Err(format!("WASI folder {} does not exist or is not a folder", dir.host.display()));
            }
        }
        Ok(())
    }

    /// A fresh context for one task, with its output captured up to `max_output` bytes per stream.
    pub(crate) fn context(&self, max_output: usize) -> Result<TaskWasi, String> {
        let (mut builder, stdout, stderr) = self.builder(max_output)?;
        let mut ctx = builder.build_p1();
        wasmtime_wasi::WasiView::ctx(&mut ctx).table.set_max_capacity(MAX_HANDLES);
        Ok(TaskWasi { ctx, stdout, stderr, refused: None })
    }

    /// A fresh WASI (preview 2) context for one call into a task component:
    /// as [`context`](Self::context), with `wasi:random` drawing from the
    /// task's seeded stream, at most `max_memory` bytes of it at once, and
    /// no network. Clocks the pool does not grant are left to the linker,
    /// which makes them stop the task (`sandbox::component_wasi`).
    pub(crate) fn component_context(
        &self,
        max_output: usize,
        max_memory: usize,
        seed: u64,
    ) -> Result<ComponentWasi, String> {
        let (mut builder, stdout, stderr) = self.builder(max_output)?;
        let random = [SeededStream::new(seed), SeededStream::new(seed)];
        builder.secure_random(random[0].clone()).insecure_random(random[1].clone());
        builder.insecure_random_seed(u128::from(seed));
        // Random bytes land in the task's memory: no more at once than it holds.
        builder.max_random_size(max_memory as u64);
        // No network: every socket and name lookup is refused, whatever
        // wasmtime-wasi's defaults.
        builder.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        builder.socket_addr_check(|_, _| Box::pin(std::future::ready(false)));
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Ok(ComponentWasi { ctx: builder.build(), table, stdout, stderr, random })
    }

    /// A builder with this configuration and captured output pipes.
    fn builder(&self, max_output: usize) -> Result<(WasiCtxBuilder, CapturedPipe, CapturedPipe), String> {
        let stdout = CapturedPipe::new("stdout", max_output);
        let stderr = CapturedPipe::new("stderr", max_output);
        let mut builder = WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone()).allow_blocking_current_thread(true);
        builder.envs(&self.env).args(&self.args);
        for dir in &self.dirs {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| format!("cannot open WASI folder {}: {e:#}", dir.host.display()))?;
        }
        Ok((builder, stdout, stderr))
    }

    /// Whether the pool grants the wall clock.
    pub(crate) fn grants_wall_clock(&self) -> bool {
        self.wall_clock
    }

    /// Whether the pool grants the monotonic clock.
    pub(crate) fn grants_monotonic_clock(&self) -> bool {
        self.monotonic_clock
    }
}

/// One component call's WASI (preview 2) context and its captured output.
pub(crate) struct ComponentWasi {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
    stdout: CapturedPipe,
    stderr: CapturedPipe,
    /// `wasi:random`'s secure and insecure streams.
    random: [SeededStream; 2],
}

impl ComponentWasi {
    /// Restarts the random streams from `seed`: the input's, before its
    /// call (instances are made with the streams of one fixed seed, so a
    /// new instance is the same for every input). `insecure-seed` keeps
    /// that fixed seed's value: CPython reads it once, at start-up, which
    /// the build has already run.
    pub(crate) fn reseed(&self, seed: u64) {
        self.random.iter().for_each(|stream| stream.reseed(seed));
    }

    /// How many handles (files, streams, …) the host has made and closed
    /// for the guest so far: unchanged by a call exactly when it made and
    /// closed none.
    pub(crate) fn handle_changes(&self) -> u64 {
        self.table.changes()
    }

    /// What the task wrote.
    pub(crate) fn take_output(&mut self) -> TaskOutput {
        TaskOutput { stdout: self.stdout.take(), stderr: self.stderr.take() }
    }

    /// The output limit a write ran into, if one did.
    pub(crate) fn overflow(&self) -> Option<LimitExceeded> {
        self.stdout.overflow().or_else(|| self.stderr.overflow())
    }
}

/// A task's seeded random stream that the host can restart with another
/// seed (see [`ComponentWasi::reseed`]).
#[derive(Clone)]
struct SeededStream(Arc<Mutex<chacha20::ChaCha8Rng>>);

impl SeededStream {
    fn new(seed: u64) -> Self {
        SeededStream(Arc::new(Mutex::new(TaskRandom::stream_of(seed))))
    }

    fn reseed(&self, seed: u64) {
        *crate::sync::lock(&self.0) = TaskRandom::stream_of(seed);
    }
}

impl rand_core::TryRng for SeededStream {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        crate::sync::lock(&self.0).try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        crate::sync::lock(&self.0).try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        crate::sync::lock(&self.0).try_fill_bytes(dst)
    }
}

/// One task's WASI context and its captured output.
pub(crate) struct TaskWasi {
    pub ctx: WasiP1Ctx,
    stdout: CapturedPipe,
    stderr: CapturedPipe,
    /// The first capability the task asked for and was refused.
    refused: Option<Capability>,
}

impl TaskWasi {
    /// What the task wrote since the last call, leaving the pipes empty
    /// (and forgetting any overflow and refusal).
    pub(crate) fn take_output(&mut self) -> TaskOutput {
        self.refused = None;
        TaskOutput { stdout: self.stdout.take(), stderr: self.stderr.take() }
    }

    /// The first capability the running task was refused, if any.
    pub(crate) fn refused(&self) -> Option<Capability> {
        self.refused
    }

    fn refuse(&mut self, capability: Capability) -> i32 {
        self.refused.get_or_insert(capability);
        ERRNO_NOTCAPABLE
    }

    /// The output limit a write ran into, if one did.
    pub(crate) fn overflow(&self) -> Option<LimitExceeded> {
        self.stdout.overflow().or_else(|| self.stderr.overflow())
    }
}

/// What a task wrote to its stdout and stderr (WASI tasks only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

impl TaskOutput {
    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Stdout as text safe to print on a terminal: the guest wrote it, so
    /// control characters and escape sequences are escaped, line breaks
    /// and tabs kept ([`EscapedText`]).
    pub fn stdout_for_terminal(&self) -> String {
        EscapedText(&self.stdout_text()).to_string()
    }

    /// Stderr as text safe to print on a terminal, as
    /// [`stdout_for_terminal`](Self::stdout_for_terminal).
    pub fn stderr_for_terminal(&self) -> String {
        EscapedText(&self.stderr_text()).to_string()
    }

    /// Every line written, stdout's then stderr's, each as `[label] text`
    /// (`[label stderr] text` for stderr) and escaped for a terminal as
    /// [`stdout_for_terminal`](Self::stdout_for_terminal) is, tabs
    /// included; a last line without its line break gets one. `label` is
    /// written as given.
    ///
    /// ```
    /// let output = wasmpool::TaskOutput { stdout: b"hi\n".to_vec(), stderr: b"oops".to_vec() };
    /// assert_eq!(output.marked_lines("square #3"), "[square #3] hi\n[square #3 stderr] oops\n");
    /// ```
    pub fn marked_lines(&self, label: &str) -> String {
        let mut text = String::new();
        for (bytes, stream) in [(&self.stdout, ""), (&self.stderr, " stderr")] {
            if bytes.is_empty() {
                continue;
            }
            let lossy = String::from_utf8_lossy(bytes);
            for line in lossy.strip_suffix('\n').unwrap_or(&lossy).split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                text.push_str(&format!("[{label}{stream}] {}\n", crate::text::EscapedLine(line)));
            }
        }
        text
    }

    /// Whether the task wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

/// What the WASI functions need of a store's state.
pub(crate) trait WasiHost: Send + 'static {
    /// The task's WASI context. Every store of a WASI pool has one.
    fn wasi(&mut self) -> &mut TaskWasi;
    /// The task's seeded random stream.
    fn random(&mut self) -> &mut TaskRandom;
    /// The task's deadline and cancel flag, which end a granted sleep.
    fn watch(&self) -> &Watch;
}

/// Links WASI into `linker`, with the clocks (and sleeping) answering as
/// `config` grants and `random_get` drawing from the task's seeded stream.
pub(crate) fn add_to_linker<T: WasiHost>(linker: &mut Linker<T>, config: &WasiConfig) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, |state: &mut T| &mut state.wasi().ctx)?;
    // The clocks are replaced by ones that refuse what was not granted,
    // sleeping by one that also ends at the deadline, and the random
    // source by the task's own stream.
    linker.allow_shadowing(true);
    linker.func_wrap(WASI_MODULE, "random_get", move |mut caller: Caller<'_, T>, buf: i32, len: i32| -> i32 {
        let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
            return ERRNO_FAULT;
        };
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let (start, len) = (buf as u32 as usize, len as u32 as usize);
        match start.checked_add(len).and_then(|end| data.get_mut(start..end)) {
            Some(dest) => {
                state.random().fill(dest);
                0
            }
            None => ERRNO_FAULT,
        }
    })?;
    let clocks = Clocks { wall: config.wall_clock, monotonic: config.monotonic_clock, start: Instant::now() };
    linker.func_wrap(
        WASI_MODULE,
        "clock_time_get",
        move |mut caller: Caller<'_, T>, id: i32, _precision: i64, out: i32| -> i32 {
            let nanos = match clocks.read(id) {
                Ok(nanos) => nanos,
                Err(Refusal::NotGranted(capability)) => return caller.data_mut().wasi().refuse(capability),
                Err(Refusal::Errno(errno)) => return errno,
            };
            write_guest(&mut caller, out as u32 as usize, &nanos.to_le_bytes())
        },
    )?;
    linker.func_wrap(WASI_MODULE, "clock_res_get", move |mut caller: Caller<'_, T>, id: i32, out: i32| -> i32 {
        match clocks.read(id) {
            Ok(_) if id == CLOCK_REALTIME => write_guest(&mut caller, out as u32 as usize, &1_000u64.to_le_bytes()),
            Ok(_) => write_guest(&mut caller, out as u32 as usize, &1u64.to_le_bytes()),
            Err(Refusal::NotGranted(capability)) => caller.data_mut().wasi().refuse(capability),
            Err(Refusal::Errno(errno)) => errno,
        }
    })?;
    linker.func_wrap(
        WASI_MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, subs: i32, events: i32, count: i32, written: i32| -> wasmtime::Result<i32> {
            poll_oneoff(&mut caller, clocks, [subs, events, count, written].map(|v| v as u32 as usize))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The clocks a pool grants, and the start of its monotonic time.
#[derive(Clone, Copy)]
struct Clocks {
    wall: bool,
    monotonic: bool,
    start: Instant,
}

/// Why a clock was not read.
enum Refusal {
    /// The pool does not grant it.
    NotGranted(Capability),
    /// Any other WASI errno (an unknown clock, the CPU-time clocks).
    Errno(i32),
}

impl Clocks {
    /// The time on clock `id`, in nanoseconds.
    fn read(&self, id: i32) -> Result<u64, Refusal> {
        match id {
            CLOCK_REALTIME if self.wall => {
                Ok(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
            }
            CLOCK_REALTIME => Err(Refusal::NotGranted(Capability::WallClock)),
            CLOCK_MONOTONIC if self.monotonic => Ok(self.start.elapsed().as_nanos() as u64),
            CLOCK_MONOTONIC => Err(Refusal::NotGranted(Capability::MonotonicClock)),
            // Process and thread CPU time: never granted.
            2 | 3 => Err(Refusal::Errno(ERRNO_NOTCAPABLE)),
            _ => Err(Refusal::Errno(ERRNO_INVAL)),
        }
    }

    /// When a clock subscription fires, as an instant of the host's
    /// monotonic clock: `timeout` nanoseconds from now, or at `timeout` on
    /// clock `id` if `absolute`.
    fn wake_at(&self, id: i32, timeout: u64, absolute: bool) -> Result<Instant, Refusal> {
        let now = Instant::now();
        if !absolute {
            return match id {
                CLOCK_REALTIME | CLOCK_MONOTONIC if self.monotonic => Ok(later(now, timeout)),
                CLOCK_REALTIME | CLOCK_MONOTONIC => Err(Refusal::NotGranted(Capability::Sleep)),
                _ => self.read(id).map(|_| now),
            };
        }
        let current = match self.read(id) {
            Ok(current) => current,
            Err(Refusal::NotGranted(_)) => return Err(Refusal::NotGranted(Capability::Sleep)),
            Err(other) => return Err(other),
        };
        Ok(later(now, timeout.saturating_sub(current)))
    }
}

/// WASI's clock ids.
const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;

/// `nanos` after `now`, or far enough in the future for any deadline.
fn later(now: Instant, nanos: u64) -> Instant {
    now.checked_add(Duration::from_nanos(nanos)).unwrap_or_else(|| now + Duration::from_secs(u32::MAX.into()))
}

/// The size of a WASI `subscription` and of an `event`.
const SUBSCRIPTION_LEN: usize = 48;
const EVENT_LEN: usize = 32;

/// Most subscriptions one `poll_oneoff` may wait on (Rust's `std` uses
/// one): the host's work and memory per call stay small whatever the guest
/// asks.
const MAX_SUBSCRIPTIONS: usize = 1024;

/// The longest a sleeping task goes without looking at its deadline and
/// cancel flag.
const SLEEP_SLICE: Duration = Duration::from_millis(5);

/// WASI's `poll_oneoff` for clock subscriptions: sleeps until the first
/// one fires (in slices, ending early at the task's deadline or when it is
/// cancelled) and reports every one that has. A clock the pool does not
/// grant is refused; waiting on files is not supported (tasks have no
/// sockets or pipes to wait on).
fn poll_oneoff<T: WasiHost>(
    caller: &mut Caller<'_, T>,
    clocks: Clocks,
    [subs, events, count, written]: [usize; 4],
) -> wasmtime::Result<i32> {
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else { return Ok(ERRNO_FAULT) };
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Ok(ERRNO_INVAL);
    }
    let Some(bytes) = count
        .checked_mul(SUBSCRIPTION_LEN)
        .and_then(|len| subs.checked_add(len))
        .and_then(|end| memory.data(&*caller).get(subs..end))
    else {
        return Ok(ERRNO_FAULT);
    };
    let subscriptions = match decode_subscriptions(bytes) {
        Ok(subscriptions) => subscriptions,
        Err(errno) => return Ok(errno),
    };
    let mut wakes = Vec::with_capacity(subscriptions.len());
    for sub in subscriptions {
        match clocks.wake_at(sub.clock, sub.timeout, sub.absolute) {
            Ok(at) => wakes.push((sub.userdata, at)),
            Err(Refusal::NotGranted(capability)) => return Ok(caller.data_mut().wasi().refuse(capability)),
            Err(Refusal::Errno(errno)) => return Ok(errno),
        }
    }
    let first = wakes.iter().map(|&(_, at)| at).min().unwrap_or_else(Instant::now);
    loop {
        if let Some(why) = caller.data().watch().check() {
            return Err(wasmtime::Error::new(why));
        }
        let now = Instant::now();
        if now >= first {
            break;
        }
        std::thread::sleep((first - now).min(SLEEP_SLICE));
    }
    let now = Instant::now();
    let mut fired = 0usize;
    for (userdata, at) in wakes {
        if at > now {
            continue;
        }
        let mut event = [0u8; EVENT_LEN];
        event[..8].copy_from_slice(&userdata.to_le_bytes()); // error 0, type 0 (clock)
        let at = events + fired * EVENT_LEN;
        if memory.write(&mut *caller, at, &event).is_err() {
            return Ok(ERRNO_FAULT);
        }
        fired += 1;
    }
    Ok(write_guest(caller, written, &(fired as u32).to_le_bytes()))
}

/// One clock subscription of `poll_oneoff`, as the guest wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockSubscription {
    userdata: u64,
    clock: i32,
    timeout: u64,
    /// `timeout` is a time on `clock`, not a duration from now.
    absolute: bool,
}

/// The subscriptions in `bytes` (whole `subscription` records, as the
/// guest's memory holds them), or the WASI errno refusing them: waiting on
/// a file descriptor is not supported.
pub(crate) fn decode_subscriptions(bytes: &[u8]) -> Result<Vec<ClockSubscription>, i32> {
    let le = |field: &[u8]| field.iter().rev().fold(0u64, |value, &byte| value << 8 | u64::from(byte));
    bytes
        .chunks_exact(SUBSCRIPTION_LEN)
        .map(|sub| match sub[8] {
            0 => Ok(ClockSubscription {
                userdata: le(&sub[0..8]),
                clock: le(&sub[16..20]) as u32 as i32,
                timeout: le(&sub[24..32]),
                absolute: le(&sub[40..42]) & 1 == 1,
            }),
            _ => Err(ERRNO_NOTSUP), // fd_read or fd_write
        })
        .collect()
}

/// For the fuzz target `wasi_poll` (`fuzz/`): decodes `bytes` as
/// `poll_oneoff`'s subscriptions; returns how many there were, or the errno.
#[doc(hidden)]
pub fn decode_subscriptions_for_fuzzing(bytes: &[u8]) -> Result<usize, i32> {
    decode_subscriptions(bytes).map(|subscriptions| subscriptions.len())
}

/// Stores `bytes` at guest address `at`; a WASI errno.
fn write_guest<T>(caller: &mut Caller<'_, T>, at: usize, bytes: &[u8]) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else { return ERRNO_FAULT };
    match memory.write(caller, at, bytes) {
        Ok(()) => 0,
        Err(_) => ERRNO_FAULT,
    }
}

/// A task's stdout or stderr, kept in memory up to a cap.
#[derive(Clone)]
struct CapturedPipe {
    what: &'static str,
    cap: usize,
    state: Arc<Mutex<PipeState>>,
}

#[derive(Default)]
struct PipeState {
    bytes: Vec<u8>,
    /// The total a refused write would have reached.
    overflow: Option<u64>,
}

/// The error a write past the cap traps with.
#[derive(Debug, thiserror::Error)]
#[error("the task wrote more than {limit} bytes to its {what}")]
struct OutputOverflow {
    what: &'static str,
    limit: usize,
}

impl CapturedPipe {
    fn new(what: &'static str, cap: usize) -> Self {
        CapturedPipe { what, cap, state: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        crate::sync::lock(&self.state)
    }

    fn take(&self) -> Vec<u8> {
        let mut state = self.lock();
        state.overflow = None;
        std::mem::take(&mut state.bytes)
    }

    fn overflow(&self) -> Option<LimitExceeded> {
        self.lock().overflow.map(|len| LimitExceeded::Output {
            what: self.what.to_owned(),
            len: Some(len),
            limit: self.cap as u64,
        })
    }

    /// Appends `bytes`, or records the overflow and refuses them all.
    fn append(&self, bytes: &[u8]) -> Result<(), OutputOverflow> {
        let mut state = self.lock();
        let total = state.bytes.len().saturating_add(bytes.len());
        if total > self.cap {
            state.overflow = Some(total as u64);
            return Err(OutputOverflow { what: self.what, limit: self.cap });
        }
        state.bytes.extend_from_slice(bytes);
        Ok(())
    }
}

impl IsTerminal for CapturedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes).map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: a write past the cap is refused by `write`, which
        // stops the task, rather than left waiting for room forever.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.append(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_closed_and_another_made_are_changes_though_the_count_is_the_same() {
        let mut wasi = WasiConfig::new().component_context(1024, 1 << 20, 0).unwrap();
        let before = wasi.handle_changes();
        let handle = wasi.table.push(1u32).unwrap();
        assert_ne!(wasi.handle_changes(), before);
        let at_start = wasi.handle_changes();
        // Closed one, made another in its place: as many handles as before
        // (in the same slot), yet not the same ones.
        wasi.table.delete(handle).unwrap();
        let other = wasi.table.push(2u32).unwrap();
        assert_eq!(wasi.table.iter_mut().count(), 1);
        assert_eq!(wasi.handle_changes(), at_start.wrapping_add(2));
        wasi.table.delete(other).unwrap();
    }

    #[test]
    fn a_pipe_keeps_what_fits_and_records_what_does_not() {
        let pipe = CapturedPipe::new("stdout", 8);
        pipe.append(b"hello").unwrap();
        assert!(pipe.append(b" world").is_err());
        pipe.append(b"!").unwrap();
        assert_eq!(pipe.lock().bytes, b"hello!");
        assert_eq!(pipe.overflow(), Some(LimitExceeded::Output { what: "stdout".into(), len: Some(11), limit: 8 }));
    }

    fn subscription(userdata: u64, tag: u8, clock: u32, timeout: u64, flags: u16) -> [u8; SUBSCRIPTION_LEN] {
        let mut sub = [0u8; SUBSCRIPTION_LEN];
        sub[0..8].copy_from_slice(&userdata.to_le_bytes());
        sub[8] = tag;
        sub[16..20].copy_from_slice(&clock.to_le_bytes());
        sub[24..32].copy_from_slice(&timeout.to_le_bytes());
        sub[40..42].copy_from_slice(&flags.to_le_bytes());
        sub
    }

    #[test]
    fn subscriptions_decode_as_wasi_lays_them_out() {
        let bytes = [subscription(7, 0, 1, 5_000, 0), subscription(u64::MAX, 0, 0, 9, 1)].concat();
        let decoded = decode_subscriptions(&bytes).unwrap();
        assert_eq!(decoded[0], ClockSubscription { userdata: 7, clock: 1, timeout: 5_000, absolute: false });
        assert_eq!(decoded[1], ClockSubscription { userdata: u64::MAX, clock: 0, timeout: 9, absolute: true });
        // Waiting on a file is refused as a whole.
        let with_fd = [subscription(1, 0, 1, 1, 0), subscription(2, 1, 0, 0, 0)].concat();
        assert_eq!(decode_subscriptions(&with_fd), Err(ERRNO_NOTSUP));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_or_are_refused_one_record_each(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            match decode_subscriptions(&bytes) {
                Ok(subscriptions) => proptest::prop_assert_eq!(subscriptions.len(), bytes.len() / SUBSCRIPTION_LEN),
                Err(errno) => proptest::prop_assert_eq!(errno, ERRNO_NOTSUP),
            }
        }
    }

    #[test]
    fn missing_folders_are_refused_up_front() {
        let config = WasiConfig::new().read_only_dir("/definitely/not/here", "data");
        assert!(config.validate().unwrap_err().contains("/definitely/not/here"));
    }
}
