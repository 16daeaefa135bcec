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
//! - the clocks answer `ENOTCAPABLE` (76) unless granted;
//! - `random_get` gives the task's own seeded stream (see [`crate::seed`]),
//!   not the host's entropy, so seeded results repeat; `HashMap`'s hash
//!   keys come from it too.
//!
//! The implementation is wasmtime's own (`wasmtime-wasi`); wasmpool only
//! decides what each task is given.

use crate::error::LimitExceeded;
use crate::seed::TaskRandom;
use crate::text::EscapedText;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The import module name of WASI preview 1.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno: "capabilities insufficient".
const ERRNO_NOTCAPABLE: i32 = 76;
/// WASI errno: "invalid argument".
const ERRNO_INVAL: i32 = 28;
/// WASI errno: "bad address".
const ERRNO_FAULT: i32 = 21;

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
        Ok(TaskWasi { ctx: builder.build_p1(), stdout, stderr })
    }
}

/// One task's WASI context and its captured output.
pub(crate) struct TaskWasi {
    pub ctx: WasiP1Ctx,
    stdout: CapturedPipe,
    stderr: CapturedPipe,
}

impl TaskWasi {
    /// What the task wrote since the last call, leaving the pipes empty
    /// (and forgetting any overflow).
    pub(crate) fn take_output(&mut self) -> TaskOutput {
        TaskOutput { stdout: self.stdout.take(), stderr: self.stderr.take() }
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

    /// Whether the task wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

/// Links WASI into `linker`, with the clocks answering as `config` grants
/// and `random_get` drawing from the task's seeded stream.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    config: &WasiConfig,
    wasi: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
    random: impl Fn(&mut T) -> &mut TaskRandom + Copy + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_sync(linker, wasi)?;
    // The clocks are replaced by ones that refuse what was not granted, and
    // the random source by the task's own stream.
    linker.allow_shadowing(true);
    linker.func_wrap(WASI_MODULE, "random_get", move |mut caller: Caller<'_, T>, buf: i32, len: i32| -> i32 {
        let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
            return ERRNO_FAULT;
        };
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let (start, len) = (buf as u32 as usize, len as u32 as usize);
        match start.checked_add(len).and_then(|end| data.get_mut(start..end)) {
            Some(dest) => {
                random(state).fill(dest);
                0
            }
            None => ERRNO_FAULT,
        }
    })?;
    let (wall, monotonic) = (config.wall_clock, config.monotonic_clock);
    let start = Instant::now();
    linker.func_wrap(
        WASI_MODULE,
        "clock_time_get",
        move |mut caller: Caller<'_, T>, id: i32, _precision: i64, out: i32| -> i32 {
            let nanos = match clock_id(id) {
                Some(Clock::Wall) if wall => {
                    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                }
                Some(Clock::Monotonic) if monotonic => start.elapsed().as_nanos() as u64,
                Some(_) => return ERRNO_NOTCAPABLE,
                None => return ERRNO_INVAL,
            };
            write_u64(&mut caller, out, nanos)
        },
    )?;
    linker.func_wrap(WASI_MODULE, "clock_res_get", move |mut caller: Caller<'_, T>, id: i32, out: i32| -> i32 {
        match clock_id(id) {
            Some(Clock::Wall) if wall => write_u64(&mut caller, out, 1_000),
            Some(Clock::Monotonic) if monotonic => write_u64(&mut caller, out, 1),
            Some(_) => ERRNO_NOTCAPABLE,
            None => ERRNO_INVAL,
        }
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

enum Clock {
    Wall,
    Monotonic,
    /// Process and thread CPU time: never granted.
    CpuTime,
}

fn clock_id(id: i32) -> Option<Clock> {
    match id {
        0 => Some(Clock::Wall),
        1 => Some(Clock::Monotonic),
        2 | 3 => Some(Clock::CpuTime),
        _ => None,
    }
}

/// Stores `value` at guest address `at`; a WASI errno.
fn write_u64<T>(caller: &mut Caller<'_, T>, at: i32, value: u64) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else { return ERRNO_FAULT };
    match memory.write(caller, at as u32 as usize, &value.to_le_bytes()) {
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
            len,
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
    fn a_pipe_keeps_what_fits_and_records_what_does_not() {
        let pipe = CapturedPipe::new("stdout", 8);
        pipe.append(b"hello").unwrap();
        assert!(pipe.append(b" world").is_err());
        pipe.append(b"!").unwrap();
        assert_eq!(pipe.lock().bytes, b"hello!");
        assert_eq!(pipe.overflow(), Some(LimitExceeded::Output { what: "stdout".into(), len: 11, limit: 8 }));
    }

    #[test]
    fn missing_folders_are_refused_up_front() {
        let config = WasiConfig::new().read_only_dir("/definitely/not/here", "data");
        assert!(config.validate().unwrap_err().contains("/definitely/not/here"));
    }
}
