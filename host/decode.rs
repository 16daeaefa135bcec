//! Encoding arguments and decoding results: postcard, strictly.

use crate::error::TaskFailure;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a task's arguments (a tuple for several, a value for one).
pub(crate) fn encode_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<u8>, TaskFailure> {
    postcard::to_allocvec(args).map_err(|e| TaskFailure::EncodeArguments(e.to_string()))
}

/// Decodes a task's result as `R`, requiring every byte to be used, so a
/// result of another type is an error rather than a silent misreading.
pub(crate) fn decode_result<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, TaskFailure> {
    let expected = || std::any::type_name::<R>().to_owned();
    match postcard::take_from_bytes::<R>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(TaskFailure::DecodeResult {
            expected: expected(),
            reason: format!("{} byte(s) left over: the task returns a different type", rest.len()),
        }),
        Err(e) => Err(TaskFailure::DecodeResult { expected: expected(), reason: e.to_string() }),
    }
}

/// Decodes a message a task sent as `M`, as strictly as a result.
pub(crate) fn decode_message<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, TaskFailure> {
    decode_result::<M>(bytes).map_err(as_message_failure)
}

/// A failure to decode a result, said of a message instead (messages are
/// decoded as strictly as results, in either encoding).
pub(crate) fn as_message_failure(failure: TaskFailure) -> TaskFailure {
    match failure {
        TaskFailure::DecodeResult { expected, reason } => TaskFailure::DecodeMessage { expected, reason },
        other => other,
    }
}

/// Decodes what a worker returned for one input: its failure, or its
/// result bytes decoded as `R`.
pub(crate) fn decode_item<R: DeserializeOwned>(result: Result<Vec<u8>, TaskFailure>) -> Result<R, TaskFailure> {
    result.and_then(|bytes| decode_result::<R>(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wrong_result_types_are_detected() {
        let bytes = encode_args(&(1u8, 2u8)).unwrap();
        assert!(matches!(decode_result::<u8>(&bytes), Err(TaskFailure::DecodeResult { .. })));
        assert!(matches!(decode_result::<String>(&[5, b'a']), Err(TaskFailure::DecodeResult { .. })));
    }

    proptest! {
        #[test]
        fn values_round_trip(a: i64, b: String, c: Vec<f64>, d: Option<u8>) {
            let bytes = encode_args(&(a, b.clone(), c.clone(), d)).unwrap();
            let back: (i64, String, Vec<f64>, Option<u8>) = decode_result(&bytes).unwrap();
            prop_assert_eq!(back.0, a);
            prop_assert_eq!(back.1, b);
            prop_assert_eq!(back.2.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), c.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            prop_assert_eq!(back.3, d);
        }

        /// Result bytes come from the guest: any bytes must decode or fail, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_result::<(String, Vec<u64>, Option<f64>)>(&bytes);
        }
    }
}
