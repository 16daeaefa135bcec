//! Frames: a little-endian `u32` length, then that many bytes of postcard.
//!
//! The reader is strict and bounded: a length above [`MAX_FRAME_LEN`] is
//! refused before anything is allocated, the payload is read incrementally
//! (so a lying length on a short stream allocates only what arrives), and a
//! truncated frame or undecodable payload is an error, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};

/// Largest request frame a worker process accepts, in bytes: a task's
/// arguments (which must fit in a guest's memory) and the compiled module,
/// plus a little framing. Replies are read with a limit derived from the
/// pool's limits instead (`messages::max_reply_len`).
pub(crate) const MAX_FRAME_LEN: u32 = (1 << 30) + 4096;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FrameError {
    /// The stream ended cleanly between frames.
    #[error("the stream ended")]
    Closed,
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the frame (length prefix included) that arrived.
        got: u64,
        /// Bytes the frame should have had.
        expected: u64,
    },
    /// The length prefix exceeds the limit.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// The announced length.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// The payload is not a valid message.
    #[error("a frame of {len} bytes does not decode: {reason}")]
    Garbage {
        /// The payload's length.
        len: u32,
        /// The decoder's complaint.
        reason: String,
    },
    /// The operating system reported an error.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Writes one message as a frame and flushes.
pub(crate) fn write_frame<T: Serialize, W: Write>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    queue_frame(writer, message)?;
    writer.flush()?;
    Ok(())
}

/// Writes one message as a frame without flushing, so that several frames
/// can leave a buffered writer in one write. Any length a frame can carry
/// is written; the reader applies its own limit.
pub(crate) fn queue_frame<T: Serialize, W: Write>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    let payload = postcard::to_allocvec(message)
        .map_err(|e| FrameError::Io(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::Oversized { len: u32::MAX, max: u32::MAX })?;
    writer.write_all(&len.to_le_bytes())?;
    writer.write_all(&payload)?;
    Ok(())
}

/// Reads one frame and decodes its message, refusing frames over `max`.
pub(crate) fn read_frame<T: DeserializeOwned, R: Read>(reader: &mut R, max: u32) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    let got = read_full(reader, &mut prefix)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < prefix.len() {
        return Err(FrameError::Truncated { got: got as u64, expected: 4 });
    }
    let len = u32::from_le_bytes(prefix);
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let mut payload = Vec::new();
    let read = reader.take(u64::from(len)).read_to_end(&mut payload)?;
    if read < len as usize {
        return Err(FrameError::Truncated { got: 4 + read as u64, expected: 4 + u64::from(len) });
    }
    match postcard::take_from_bytes::<T>(&payload) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(FrameError::Garbage { len, reason: format!("{} trailing bytes", rest.len()) }),
        Err(e) => Err(FrameError::Garbage { len, reason: e.to_string() }),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed<T: Serialize>(message: &T) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, message).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut bytes = framed(&(1u32, "one".to_string()));
        bytes.extend(framed(&(2u32, "two".to_string())));
        let mut reader = bytes.as_slice();
        assert_eq!(read_frame::<(u32, String), _>(&mut reader, 1024).unwrap(), (1, "one".into()));
        assert_eq!(read_frame::<(u32, String), _>(&mut reader, 1024).unwrap(), (2, "two".into()));
        assert!(matches!(read_frame::<(u32, String), _>(&mut reader, 1024), Err(FrameError::Closed)));
    }

    #[test]
    fn queued_frames_leave_together_on_flush() {
        let mut writer = std::io::BufWriter::new(Vec::new());
        for n in 0..3u32 {
            queue_frame(&mut writer, &(n, "queued".to_string())).unwrap();
        }
        assert!(writer.get_ref().is_empty(), "nothing leaves before the flush");
        writer.flush().unwrap();
        let mut reader = writer.get_ref().as_slice();
        for n in 0..3u32 {
            assert_eq!(read_frame::<(u32, String), _>(&mut reader, 1024).unwrap(), (n, "queued".into()));
        }
        assert!(matches!(read_frame::<(u32, String), _>(&mut reader, 1024), Err(FrameError::Closed)));
    }

    #[test]
    fn truncated_oversized_and_garbage_frames_are_errors() {
        let whole = framed(&"hello".to_string());
        let cut = &whole[..whole.len() - 2];
        assert!(matches!(
            read_frame::<String, _>(&mut &cut[..], 1024),
            Err(FrameError::Truncated { got: 8, expected: 10 })
        ));
        assert!(matches!(read_frame::<String, _>(&mut &whole[..2], 1024), Err(FrameError::Truncated { .. })));
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(read_frame::<String, _>(&mut &huge[..], 1024), Err(FrameError::Oversized { .. })));
        let garbage = [3u8, 0, 0, 0, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame::<String, _>(&mut &garbage[..], 1024), Err(FrameError::Garbage { .. })));
        let trailing = [2u8, 0, 0, 0, 0, 0];
        assert!(matches!(read_frame::<bool, _>(&mut &trailing[..], 1024), Err(FrameError::Garbage { .. })));
    }

    #[test]
    fn a_lying_length_on_a_short_stream_allocates_only_what_arrives() {
        let mut bytes = (MAX_FRAME_LEN - 1).to_le_bytes().to_vec();
        bytes.extend([0u8; 16]);
        let err = read_frame::<Vec<u8>, _>(&mut bytes.as_slice(), MAX_FRAME_LEN).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { got: 20, .. }), "{err}");
    }

    proptest! {
        /// Frames come from another process: any bytes must give a message
        /// or an error, never a panic.
        #[test]
        fn arbitrary_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut reader = bytes.as_slice();
            while read_frame::<(u64, String, Option<Vec<u8>>), _>(&mut reader, 256).is_ok() {}
        }
    }
}
