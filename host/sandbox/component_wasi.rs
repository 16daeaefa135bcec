//! WASI (preview 2) for task components: which interfaces a component may
//! import, and what each gives it.
//!
//! A component of tasks written in Python imports most of WASI 0.2 (its
//! CPython reads its environment even to compute a square root, and links
//! sockets in). The linker holds exactly the interfaces listed in
//! [`link`], each as wasmtime-wasi implements it (at 0.2.12; a component
//! importing an older 0.2.x links to them by semver). A component importing
//! anything else is refused when the pool loads it. What they give:
//! - sockets and name lookups: nothing, each use refused (the permissions
//!   are set in `WasiConfig`'s builder, not left to defaults);
//! - clocks: nothing unless the pool grants them; a call to a clock not
//!   granted stops the task with [`Capability`] named ([`deny_clocks`]);
//! - waiting (`wasi:io/poll`'s `poll` and `pollable.block`, on a granted
//!   clock): ends at the task's deadline, when it is cancelled, or when the
//!   pool closes ([`bound_waits`]), where wasmtime-wasi's own would block
//!   in host code that no deadline reaches;
//! - files: only the folders granted, as for WASI preview 1
//!   (`crate::sandbox::wasi`).

use crate::error::Capability;
use crate::sandbox::interrupt::Watch;
use crate::sandbox::wasi::WasiConfig;
use std::future::Future;
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random, sockets, sync};

/// What the WASI functions of a component need of its store's state.
pub(crate) trait ComponentWasiHost: WasiView {
    /// The resources the component holds, and the running task's deadline
    /// and cancel flag (which end a wait).
    fn table_and_watch(&mut self) -> (&mut ResourceTable, &Watch);
}

/// The WASI clock interfaces, as wasmtime-wasi 48 names them (a component
/// importing an older 0.2 release links to these).
const WALL_CLOCK: &str = "wasi:clocks/wall-clock@0.2.12";
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
/// The interface of waiting.
const POLL: &str = "wasi:io/poll@0.2.12";

/// The longest a waiting task goes without looking at its deadline and
/// cancel flag.
const WAIT_SLICE: Duration = Duration::from_millis(5);

/// A clock the pool does not grant: the trap a task's use of it raises.
#[derive(Debug, thiserror::Error)]
#[error("{} was not granted", .0.what())]
pub(crate) struct Refused(pub Capability);

/// `wasi:io`'s resources live in the store's table.
struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links the WASI interfaces a task component may import into `linker`,
/// with the clocks as `config` grants them and every wait bounded by the
/// task's deadline.
pub(crate) fn link<T: ComponentWasiHost>(linker: &mut Linker<T>, config: &WasiConfig) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    let l = &mut *linker;
    io::error::add_to_linker::<T, Io>(l, |t| t.ctx().table)?;
    sync::io::poll::add_to_linker::<T, Io>(l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<T, Io>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    // Linked because CPython imports them; every use is refused (see
    // `WasiConfig::component_context`).
    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, &Default::default(), T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    linker.allow_shadowing(true);
    let shadowed = deny_clocks(linker, config).and_then(|()| bound_waits(linker));
    linker.allow_shadowing(false);
    shadowed
}

/// Replaces the clocks the pool does not grant with functions that stop
/// the task, naming the capability. (`linker` allows shadowing.)
fn deny_clocks<T: 'static>(linker: &mut Linker<T>, config: &WasiConfig) -> wasmtime::Result<()> {
    let mut deny = |interface: &str, functions: &[&str], capability: Capability| -> wasmtime::Result<()> {
        let mut instance = linker.instance(interface)?;
        for &function in functions {
            instance.func_new(function, move |_, _, _, _| Err(wasmtime::Error::new(Refused(capability))))?;
        }
        Ok(())
    };
    if !config.grants_wall_clock() {
        deny(WALL_CLOCK, &["now"], Capability::WallClock)?;
    }
    if !config.grants_monotonic_clock() {
        deny(MONOTONIC_CLOCK, &["now"], Capability::MonotonicClock)?;
        deny(MONOTONIC_CLOCK, &["subscribe-instant", "subscribe-duration"], Capability::Sleep)?;
    }
    Ok(())
}

/// Replaces `poll` and `pollable.block` with waits that end at the task's
/// deadline, when it is cancelled, or when the pool closes. (`linker`
/// allows shadowing.)
fn bound_waits<T: ComponentWasiHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    use io::poll::{Host as _, HostPollable as _};
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap("poll", |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
        let (table, watch) = store.data_mut().table_and_watch();
        let ready = until_stopped(watch, table.poll(pollables))??;
        Ok((ready,))
    })?;
    poll.func_wrap("[method]pollable.block", |mut store, (pollable,): (Resource<DynPollable>,)| {
        let (table, watch) = store.data_mut().table_and_watch();
        until_stopped(watch, table.block(pollable))??;
        Ok(())
    })?;
    Ok(())
}

/// Runs `wait` to its end, or until `watch` says stop (checked every
/// [`WAIT_SLICE`]): the interruption is the error the task stops with.
fn until_stopped<F: Future>(watch: &Watch, wait: F) -> wasmtime::Result<F::Output> {
    wasmtime_wasi::runtime::in_tokio(async {
        let mut wait = std::pin::pin!(wait);
        loop {
            if let Some(why) = watch.check() {
                return Err(wasmtime::Error::new(why));
            }
            if let Ok(done) = tokio::time::timeout(WAIT_SLICE, wait.as_mut()).await {
                return Ok(done);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::interrupt::{Interrupted, RunLimits};
    use std::time::Instant;

    #[test]
    fn a_wait_ends_at_the_deadline() {
        let watch = Watch::start(&RunLimits { deadline: Some(Duration::from_millis(50)), ..RunLimits::default() });
        let start = Instant::now();
        let stopped = until_stopped(&watch, std::future::pending::<()>()).unwrap_err();
        assert_eq!(stopped.downcast_ref::<Interrupted>(), Some(&Interrupted::Deadline(Duration::from_millis(50))));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(until_stopped(&watch.clone(), async { 7 }).ok(), None, "past its deadline, nothing waits");
        assert_eq!(until_stopped(&Watch::default(), async { 7 }).unwrap(), 7);
        // Without a deadline, the pool closing (or a cancel) ends it.
        let closing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = Watch::start(&RunLimits { closing: Some(closing.clone()), ..RunLimits::default() });
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            closing.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let stopped = until_stopped(&watch, std::future::pending::<()>()).unwrap_err();
        assert_eq!(stopped.downcast_ref::<Interrupted>(), Some(&Interrupted::PoolClosed));
        closer.join().unwrap();
    }
}
