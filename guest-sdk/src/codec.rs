//! Decoding a task's arguments and encoding its outcome.

use core::fmt::Display;
use serde::{Deserialize, Serialize};
use wasmpool_abi::status;

/// What a task call produced: a status code and its payload bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// One of `wasmpool_abi::status`.
    pub status: u32,
    /// The postcard-encoded result, or a UTF-8 message.
    pub payload: Vec<u8>,
}

/// Decodes the argument tuple from the buffer the host wrote, insisting
/// that every byte is used (so a surplus argument is an error, not ignored).
pub fn decode_args<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!(
            "{} byte(s) left over after the last argument (too many arguments, or wrong types?)",
            rest.len()
        )),
        Err(e) => Err(format!("{e} (missing arguments, or wrong types?)")),
    }
}

/// A successful result, postcard-encoded.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Outcome {
    match postcard::to_allocvec(value) {
        Ok(payload) => Outcome { status: status::OK, payload },
        Err(e) => failed(format_args!("the task's result could not be encoded: {e}")),
    }
}

/// A task failure carrying `message`.
pub fn failed(message: impl Display) -> Outcome {
    Outcome { status: status::TASK_ERROR, payload: message.to_string().into_bytes() }
}

/// Arguments that did not decode.
pub fn bad_arguments(message: impl Display) -> Outcome {
    Outcome { status: status::BAD_ARGUMENTS, payload: message.to_string().into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_decode_exactly() {
        let bytes = postcard::to_allocvec(&(3u32, "abc", 2.5f64)).unwrap();
        let (a, b, c): (u32, &str, f64) = decode_args(&bytes).unwrap();
        assert_eq!((a, b, c), (3, "abc", 2.5));
    }

    #[test]
    fn surplus_and_missing_arguments_are_errors() {
        let bytes = postcard::to_allocvec(&(1u32, 2u32)).unwrap();
        let surplus = decode_args::<(u32,)>(&bytes).unwrap_err();
        assert!(surplus.contains("left over"), "{surplus}");
        let missing = decode_args::<(u32, u32, u32)>(&bytes).unwrap_err();
        assert!(missing.contains("missing arguments"), "{missing}");
    }

    #[test]
    fn outcomes_carry_status_and_payload() {
        assert_eq!(ok(&7u8), Outcome { status: status::OK, payload: vec![7] });
        assert_eq!(failed("no").payload, b"no");
        assert_eq!(bad_arguments("eh").status, status::BAD_ARGUMENTS);
    }
}
