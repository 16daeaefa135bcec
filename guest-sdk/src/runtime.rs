//! The guest half of the ABI: the fixed exports and the call of one task.
//!
//! Memory ownership (see `docs/abi.md`): the host asks `wasmpool_alloc` for
//! an argument buffer and writes into it; the task export takes that buffer
//! over and frees it. The task's result stays in guest memory, owned by the
//! guest, until the next call into the module.

use crate::codec::Outcome;
use core::cell::RefCell;
use std::alloc::{Layout, alloc, dealloc};
use wasmpool_abi::{ABI_VERSION, RESULT_HEADER_LEN, ResultHeader};

/// The last result: its header (pointed to by the task's return value) and
/// its payload (pointed to by the header).
struct ResultSlot {
    header: [u8; RESULT_HEADER_LEN],
    payload: Vec<u8>,
}

thread_local! {
    static RESULT: RefCell<ResultSlot> =
        const { RefCell::new(ResultSlot { header: [0; RESULT_HEADER_LEN], payload: Vec::new() }) };
}

/// Export `wasmpool_abi_version`: the ABI version this SDK implements.
/// (Only the wasm32 build exports it; natively it is used by tests alone.)
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[cfg_attr(target_arch = "wasm32", unsafe(export_name = "wasmpool_abi_version"))]
pub extern "C" fn abi_version() -> u32 {
    ABI_VERSION
}

/// Export `wasmpool_alloc`: `len` bytes for the host to write arguments
/// into, or null if the allocator refuses.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[cfg_attr(target_arch = "wasm32", unsafe(export_name = "wasmpool_alloc"))]
pub extern "C" fn alloc_args(len: usize) -> *mut u8 {
    match Layout::array::<u8>(len) {
        Ok(_) if len == 0 => core::ptr::NonNull::<u8>::dangling().as_ptr(),
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => core::ptr::null_mut(),
    }
}

/// Runs one task call: takes over the argument buffer, runs `body` on its
/// bytes, stores the outcome and returns the address of its header.
///
/// # Safety
/// `args_ptr`/`args_len` must come from one `wasmpool_alloc(args_len)` call
/// whose buffer has not been handed to a task before: that is the host's
/// side of the ABI.
pub unsafe fn run_task(args_ptr: *mut u8, args_len: usize, body: impl FnOnce(&[u8]) -> Outcome) -> *const u8 {
    crate::panic_hook::install();
    crate::random::start_task();
    crate::system_random::start_task();
    let outcome = if args_len == 0 {
        body(&[])
    } else {
        // SAFETY: guaranteed by the caller: the buffer is ours, initialized
        // by the host and `args_len` long.
        let args = unsafe { core::slice::from_raw_parts(args_ptr, args_len) };
        let outcome = body(args);
        // SAFETY: allocated by `alloc_args` with this very layout.
        unsafe { dealloc(args_ptr, Layout::from_size_align_unchecked(args_len, 1)) };
        outcome
    };
    store(outcome)
}

/// Keeps the outcome in the result slot and returns its header's address.
fn store(outcome: Outcome) -> *const u8 {
    RESULT.with(|slot| {
        let mut slot = slot.borrow_mut();
        slot.payload = outcome.payload;
        let header = ResultHeader {
            status: outcome.status,
            payload_ptr: slot.payload.as_ptr() as usize as u32,
            payload_len: slot.payload.len() as u32,
        };
        slot.header = header.to_bytes();
        slot.header.as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ok;

    #[test]
    fn a_call_frees_its_arguments_and_points_at_its_result() {
        let bytes = postcard::to_allocvec(&(20u32, 22u32)).unwrap();
        let buf = alloc_args(bytes.len());
        // SAFETY: `buf` has room for `bytes.len()` bytes.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
        let header_ptr = unsafe {
            run_task(buf, bytes.len(), |args| {
                let (a, b): (u32, u32) = crate::codec::decode_args(args).unwrap();
                ok(&(a + b))
            })
        };
        let header = ResultHeader::from_bytes(unsafe { *(header_ptr as *const [u8; RESULT_HEADER_LEN]) });
        assert_eq!(header.status, wasmpool_abi::status::OK);
        assert_eq!(header.payload_len, 1);
        assert_eq!(abi_version(), ABI_VERSION);
    }

    #[test]
    fn empty_argument_buffers_need_no_allocation() {
        let buf = alloc_args(0);
        assert!(!buf.is_null());
        let header_ptr = unsafe { run_task(buf, 0, |args| ok(&args.len())) };
        assert!(!header_ptr.is_null());
    }
}
