//! How the host talks to a worker process: length-prefixed postcard frames
//! over the child's stdin and stdout, starting with a version handshake.

pub(crate) mod frame;
pub(crate) mod messages;

use frame::read_frame;

/// Decodes a byte stream as the worker protocol's frames, both directions,
/// until the first error; returns how many frames decoded. For the fuzz
/// target `frames` (`fuzz/`): the decoder must survive any bytes.
#[doc(hidden)]
pub fn decode_frames_for_fuzzing(bytes: &[u8]) -> usize {
    let mut decoded = 0;
    let mut requests = bytes;
    while read_frame::<messages::Request, _>(&mut requests, 1 << 20).is_ok() {
        decoded += 1;
    }
    let mut replies = bytes;
    while read_frame::<messages::Reply, _>(&mut replies, 1 << 20).is_ok() {
        decoded += 1;
    }
    decoded
}
