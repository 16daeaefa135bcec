//! Reporting a panic to the host before the guest traps.
//!
//! On `wasm32-unknown-unknown` a panic aborts, which is a trap: no message
//! survives it. So the SDK installs a panic hook that hands the message and
//! location to the host function `wasmpool.panic` first; the host attaches
//! them to the trap it then sees.

/// Installs the hook once; later calls do nothing.
pub fn install() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| std::panic::set_hook(Box::new(report)));
    }
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wasmpool")]
unsafe extern "C" {
    #[link_name = "panic"]
    fn host_panic(msg_ptr: *const u8, msg_len: usize, file_ptr: *const u8, file_len: usize, line: u32, column: u32);
}

#[cfg(target_arch = "wasm32")]
fn report(info: &std::panic::PanicHookInfo<'_>) {
    let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
    let (file, line, column) = info.location().map_or(("", 0, 0), |l| (l.file(), l.line(), l.column()));
    // SAFETY: the pointers and lengths describe live UTF-8 strings; the host
    // only reads them, within this guest's memory.
    unsafe { host_panic(message.as_ptr(), message.len(), file.as_ptr(), file.len(), line, column) };
}
