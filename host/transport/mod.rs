//! How the host talks to a worker process: length-prefixed postcard frames
//! over the child's stdin and stdout, starting with a version handshake.

pub(crate) mod frame;
pub(crate) mod messages;

pub use frame::{FrameError, MAX_FRAME_LEN, read_frame, write_frame};
