//! Sending to the host while a task runs: typed messages through a
//! [`Sender`], and [`progress`] reports.
//!
//! A task that takes a `Sender<T>` argument gets one from the SDK (the
//! caller passes only the other arguments). Each `send` reaches the host at
//! once, not at the task's end: a host reading the task's
//! `Exchange` sees it while the task goes on. If the host's queue is full,
//! `send` waits for room (up to the task's deadline); if nobody listens
//! (a plain `map`), the message is dropped and `send` says so.
//!
//! A message travels in the encoding of the call: postcard when the task
//! was called with postcard (typed calls from Rust), JSON when it was
//! called through its JSON entry point (the `wasmpool` command, Python,
//! the host's `JsonTask`), so a JSON caller reads JSON messages as it
//! reads JSON results.
//!
//! ```
//! use wasmpool_guest::{Sender, task};
//!
//! /// The Collatz sequence of `n`: sends every value it passes, returns the step count.
//! #[task]
//! fn collatz(mut n: u64, values: Sender<u64>) -> u32 {
//!     let mut steps = 0;
//!     while n > 1 {
//!         n = if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 };
//!         let _ = values.send(&n);
//!         steps += 1;
//!     }
//!     steps
//! }
//!
//! // Natively (unit tests) a sender keeps what is sent:
//! let values = Sender::new();
//! assert_eq!(collatz(6, values.clone()), 8);
//! assert_eq!(values.sent(), [3, 10, 5, 16, 8, 4, 2, 1]);
//! ```

use core::marker::PhantomData;
use serde::Serialize;

/// The channel from a task to the host, carrying values of type `T`.
pub struct Sender<T> {
    #[cfg(not(target_arch = "wasm32"))]
    sent: std::rc::Rc<core::cell::RefCell<Vec<Vec<u8>>>>,
    /// The message's encoding: that of the call the task came in by.
    encoding: Encoding,
    _type: PhantomData<fn(T)>,
}

/// How a sender encodes its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Postcard,
    #[cfg(feature = "json")]
    Json,
}

/// Why a message was not delivered: no one listens to this task's messages
/// (it runs in a plain `map` or `call`, not in an `Exchange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NobodyListens;

impl core::fmt::Display for NobodyListens {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("nobody listens to this task's messages")
    }
}

impl<T: Serialize> Sender<T> {
    /// Sends `message` to the host, encoded as the task's call was
    /// (postcard, or JSON through the JSON entry point). The task stops
    /// with an error if the message is over the pool's `max_message`.
    pub fn send(&self, message: &T) -> Result<(), NobodyListens> {
        // Encoding fails only for what the encoding cannot represent (a
        // sequence of unknown length for postcard, a map with keys that are
        // not strings for JSON): a bug in the task, reported as its panic.
        let encoded = match self.encoding {
            Encoding::Postcard => postcard::to_allocvec(message).map_err(|e| e.to_string()),
            #[cfg(feature = "json")]
            Encoding::Json => serde_json::to_vec(message).map_err(|e| e.to_string()),
        };
        let bytes = encoded.unwrap_or_else(|e| {
            panic!("cannot encode a message of type {} as {:?}: {e}", core::any::type_name::<T>(), self.encoding)
        });
        self.send_bytes(bytes)
    }

    #[cfg(target_arch = "wasm32")]
    fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), NobodyListens> {
        // SAFETY: the pointer and length describe a live buffer, which the
        // host only reads.
        let status = unsafe { imp::host_send(bytes.as_ptr(), bytes.len()) };
        if status == wasmpool_abi::send_status::DELIVERED { Ok(()) } else { Err(NobodyListens) }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), NobodyListens> {
        self.sent.borrow_mut().push(bytes);
        Ok(())
    }
}

impl<T> Sender<T> {
    /// The sender handed to a task called with postcard: the `#[task]`
    /// expansion calls this.
    #[doc(hidden)]
    pub fn __for_task() -> Self {
        Sender {
            #[cfg(not(target_arch = "wasm32"))]
            sent: Default::default(),
            encoding: Encoding::Postcard,
            _type: PhantomData,
        }
    }

    /// The sender handed to a task called through its JSON entry point:
    /// its messages are JSON.
    #[cfg(feature = "json")]
    #[doc(hidden)]
    pub fn __for_json_task() -> Self {
        Sender { encoding: Encoding::Json, ..Self::__for_task() }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<T> Sender<T> {
    /// A sender that keeps what is sent (native builds, for unit tests of
    /// tasks); clones share what they keep.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self::__for_task()
    }

    /// What was sent through this sender and its clones so far.
    pub fn sent(&self) -> Vec<T>
    where
        T: serde::de::DeserializeOwned,
    {
        let decode = |bytes: &Vec<u8>| match self.encoding {
            Encoding::Postcard => postcard::from_bytes(bytes).ok(),
            #[cfg(feature = "json")]
            Encoding::Json => serde_json::from_slice(bytes).ok(),
        };
        self.sent.borrow().iter().filter_map(decode).collect()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            #[cfg(not(target_arch = "wasm32"))]
            sent: self.sent.clone(),
            encoding: self.encoding,
            _type: PhantomData,
        }
    }
}

impl<T> core::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Sender")
    }
}

/// Reports that the task has done `done` units of work out of `total`; the
/// host hands it to the call's progress callback and to an `Exchange`.
/// Natively it does nothing.
pub fn progress(done: u64, total: u64) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: a host function taking two integers.
    unsafe {
        imp::host_progress(done as i64, total as i64)
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (done, total);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    // wasmpool_abi::SEND_IMPORT and PROGRESS_IMPORT (link_name takes a literal only).
    #[link(wasm_import_module = "wasmpool")]
    unsafe extern "C" {
        #[link_name = "send"]
        pub fn host_send(ptr: *const u8, len: usize) -> i32;
        #[link_name = "progress"]
        pub fn host_progress(done: i64, total: i64);
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    #[test]
    fn a_task_called_with_json_sends_json() {
        let json = Sender::<(u8, String)>::__for_json_task();
        json.send(&(7, "x".into())).unwrap();
        assert_eq!(*json.sent.borrow(), [br#"[7,"x"]"#.to_vec()]);
        assert_eq!(json.clone().sent(), [(7, "x".to_owned())]);
        let postcard = Sender::<(u8, String)>::__for_task();
        postcard.send(&(7, "x".into())).unwrap();
        assert_eq!(*postcard.sent.borrow(), [vec![7, 1, b'x']]);
    }
}
