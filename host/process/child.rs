//! The worker process's side: handshake, then one task per request.

use crate::error::{LoadStep, TaskFailure};
use crate::runtime::code::CompiledCode;
use crate::runtime::engine::create_engine;
use crate::runtime::outbox::{Outbox, Sent};
use crate::sandbox::interrupt::{Interrupted, RunLimits, Watch};
use crate::sync::lock;
use crate::transport::frame::{MAX_FRAME_LEN, read_frame, write_frame};
use crate::transport::messages::{Hello, MAX_AHEAD, PROTOCOL_VERSION, Reply, Request, RunRequest};
use crate::worker::code::WorkerCode;
use crate::worker::load::LoadedCode;
use crate::worker::worker_stack_size;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Exit status of a worker whose host sent something it cannot serve.
const EXIT_PROTOCOL: u8 = 2;
/// Exit status of a worker that stopped because its guest broke the ABI.
const EXIT_GUEST_ABI: u8 = 3;
/// Exit status of a worker whose module failed its probe.
const EXIT_PROBE: u8 = 4;

/// Set when the worker is about to exit with [`EXIT_GUEST_ABI`].
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The `main` of a worker process: serves one pool's tasks over stdin and
/// stdout, and exits when stdin closes. `wasmpool-worker` is just this; a
/// program that serves as its own worker executable (see
/// [`ProcessConfig::args`](crate::ProcessConfig::args)) calls it when
/// started with those arguments, before writing anything to stdout.
pub fn worker_main() -> ExitCode {
    let mut input = BufReader::new(std::io::stdin());
    let mut output = BufWriter::new(std::io::stdout());
    let hello = match read_frame::<Request, _>(&mut input, MAX_FRAME_LEN) {
        Ok(Request::Hello(hello)) => hello,
        Ok(Request::Run(_)) => {
            eprintln!("wasmpool-worker: expected a Hello first, got a Run request");
            return ExitCode::from(EXIT_PROTOCOL);
        }
        Err(e) => {
            eprintln!("wasmpool-worker: no handshake from the host ({e}); this program is started by wasmpool");
            return ExitCode::from(EXIT_PROTOCOL);
        }
    };
    let prepared = match prepare(&hello) {
        Ok(prepared) => prepared,
        Err(reason) => {
            let _ = write_frame(&mut output, &Reply::Refused { reason });
            return ExitCode::from(EXIT_PROTOCOL);
        }
    };
    if write_frame(&mut output, &Reply::Loaded).is_err() {
        return ExitCode::SUCCESS; // The host is gone already.
    }
    // Tasks run on a thread whose stack has room for the Wasm stack limit
    // (a main thread's stack is 1 MiB on Windows).
    let stack_size = worker_stack_size(hello.instance.limits.max_stack);
    let server = std::thread::Builder::new()
        .name("wasmpool-worker-tasks".into())
        .stack_size(stack_size)
        .spawn(move || serve(&hello, prepared, input, output));
    match server.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        _ => ExitCode::from(EXIT_PROTOCOL),
    }
}

/// Probes the module, then runs tasks until stdin closes.
fn serve(
    hello: &Hello,
    prepared: Prepared,
    input: BufReader<std::io::Stdin>,
    mut output: BufWriter<std::io::Stdout>,
) -> ExitCode {
    let mut tasks = match load(hello, prepared, &mut output) {
        Ok(tasks) => tasks,
        Err(status) => return status,
    };
    let incoming = read_requests(input);
    let output = Arc::new(Mutex::new(output));
    for RunRequest { id, export, args, seed, fuel, messages, progress } in incoming {
        // Deadlines and cancellation are the host's: it kills this process.
        let run = RunLimits { fuel, ..RunLimits::default() };
        let outbox = (messages || progress)
            .then(|| Box::new(PipeOutbox { output: output.clone(), id, messages, progress }) as Box<dyn Outbox>);
        let outcome = tasks.run(&export, &args, seed, outbox, &run);
        let mut output = lock(&output);
        if let Err(TaskFailure::Abi(reason)) = &outcome.result {
            // A guest that breaks the ABI may have left this process in a
            // state nobody can vouch for: report, then let the host replace
            // the process (and retry the task on the new one).
            STOPPING.store(true, Ordering::SeqCst);
            eprintln!("stopping: the guest broke the wasmpool ABI: {reason}");
            let reason = format!("the worker stopped itself: the guest broke the wasmpool ABI: {reason}");
            let _ = write_frame(&mut *output, &Reply::Fatal { reason });
            return ExitCode::from(EXIT_GUEST_ABI);
        }
        if write_frame(&mut *output, &Reply::Done { id, outcome }).is_err() {
            break;
        }
        drop(output);
        // The result is on its way: now put the instance back.
        tasks.tidy();
    }
    let _ = lock(&output).flush();
    ExitCode::SUCCESS
}

/// Links and probes the code (announcing each step, so that the host can
/// name the one that hung) and reports ready: what serves the tasks, or the
/// status to exit with.
fn load(hello: &Hello, prepared: Prepared, output: &mut BufWriter<std::io::Stdout>) -> Result<WorkerCode, ExitCode> {
    // The load deadline is the host's: it kills this process; no ticker
    // either (killed, not interrupted).
    let run = RunLimits { fuel: hello.instance.limits.fuel, ..RunLimits::default() };
    let mut announce = |step: &LoadStep| {
        let _ = write_frame(&mut *output, &Reply::Probing(step.clone()));
    };
    let Prepared { engine, code } = prepared;
    let probed = LoadedCode::link(&engine, &code, &hello.instance, None, &run, &mut announce).and_then(|loaded| {
        let loaded = loaded.with_init(hello.init.clone().map(Arc::new));
        loaded.probe(&run, &mut announce)?;
        Ok(loaded.into_worker(hello.mode))
    });
    let served = match probed {
        Ok(served) => served,
        Err(failure) => {
            let _ = write_frame(&mut *output, &Reply::ProbeFailed(failure));
            return Err(ExitCode::from(EXIT_PROBE));
        }
    };
    if write_frame(&mut *output, &Reply::Ready).is_err() {
        return Err(ExitCode::SUCCESS); // The host is gone already.
    }
    Ok(served)
}

/// The compiled code the host sent, loaded into this process's engine.
struct Prepared {
    engine: wasmtime::Engine,
    code: CompiledCode,
}

/// The host's run requests, read on a thread of their own, so that the end
/// of stdin (the host closed it, or died) ends the process even mid-task.
/// The queue has room for every request the host sends ahead (and the one
/// running), so reading never waits for the tasks.
fn read_requests(mut input: BufReader<std::io::Stdin>) -> crossbeam_channel::Receiver<RunRequest> {
    let (requests, incoming) = crossbeam_channel::bounded::<RunRequest>(MAX_AHEAD + 1);
    std::thread::spawn(move || {
        loop {
            match read_frame::<Request, _>(&mut input, MAX_FRAME_LEN) {
                Ok(Request::Run(request)) => {
                    if requests.send(request).is_err() {
                        break;
                    }
                }
                Ok(Request::Hello(_)) => {
                    eprintln!("wasmpool-worker: unexpected second Hello");
                    std::process::exit(i32::from(EXIT_PROTOCOL));
                }
                // Once the main thread is stopping with a status of its own,
                // the host closing stdin must not replace that status with 0.
                Err(_) if STOPPING.load(Ordering::SeqCst) => break,
                Err(crate::transport::frame::FrameError::Closed) => std::process::exit(0),
                Err(e) => {
                    eprintln!("wasmpool-worker: bad request from the host: {e}");
                    std::process::exit(i32::from(EXIT_PROTOCOL));
                }
            }
        }
    });
    incoming
}

/// A task's outbox in a worker process: each message becomes a
/// [`Reply::Sent`] frame on stdout, ahead of the task's result. A full pipe
/// makes the task wait (the host reads as its listener takes messages).
struct PipeOutbox {
    output: Arc<Mutex<BufWriter<std::io::Stdout>>>,
    /// The running input's id.
    id: u64,
    messages: bool,
    progress: bool,
}

impl Outbox for PipeOutbox {
    fn deliver(&mut self, sent: Sent, _watch: &Watch) -> Result<bool, Interrupted> {
        let wanted = match sent {
            Sent::Message(_) => self.messages,
            Sent::Progress { .. } => self.progress,
        };
        if !wanted {
            return Ok(false);
        }
        let mut output = lock(&self.output);
        // A host that stopped reading is gone: the task stops as if the
        // pool had closed.
        write_frame(&mut *output, &Reply::Sent { id: self.id, sent })
            .map(|()| true)
            .map_err(|_| Interrupted::PoolClosed)
    }
}

/// Checks the handshake and loads the compiled module or component the
/// host sent.
fn prepare(hello: &Hello) -> Result<Prepared, String> {
    if hello.protocol != PROTOCOL_VERSION || hello.wasmpool_version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "this wasmpool-worker is version {} (protocol {PROTOCOL_VERSION}), the host is version {} (protocol {}); \
             use the worker built with the host",
            env!("CARGO_PKG_VERSION"),
            hello.wasmpool_version,
            hello.protocol
        ));
    }
    let (engine, _) = create_engine(&hello.engine).map_err(|e| e.to_string())?;
    // SAFETY: the code comes from the host that started this process, over
    // its private pipe: the host serialized it from a module or component
    // it compiled, or loaded from its own trusted cache, with an engine of
    // these very settings (which wasmtime checks again).
    let code = unsafe { CompiledCode::deserialize(&engine, hello.kind, &hello.code) }
        .map_err(|e| format!("{e}, which the host sent"))?;
    Ok(Prepared { engine, code })
}
