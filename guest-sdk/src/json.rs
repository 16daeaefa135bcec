//! The JSON entry point of every task (feature `json`, on by default).
//!
//! Besides its postcard export, each `#[task]` gets an export
//! `wasmpool_json_<name>` taking its arguments as UTF-8 JSON and returning
//! its result as JSON, decoded and encoded here with the task's own serde
//! types: callers that speak JSON (the `wasmpool` command, services) need no
//! glue per task, and JSON means exactly what the task's types say it means.
//!
//! The arguments are the bare value for a task of one argument, an array
//! for several, and `null` or `[]` for none.

use crate::codec::Outcome;
use serde::{Deserialize, Serialize};
use wasmpool_abi::status;

/// Decodes the arguments of a task taking `arity` arguments (as a tuple
/// for two or more, as the value itself for one), using every byte.
pub fn decode_args<'a, T: Deserialize<'a>>(bytes: &'a [u8], arity: usize) -> Result<T, String> {
    serde_json::from_slice::<T>(bytes).map_err(|e| {
        let shape = match arity {
            0 => "`null` or `[]`".to_owned(),
            1 => "the argument's JSON value".to_owned(),
            n => format!("a JSON array of {n} arguments"),
        };
        format!("{e} (expected {shape})")
    })
}

/// Checks that a task without arguments got `null` or `[]`.
pub fn no_args(bytes: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Option<[(); 0]>>(bytes) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e} (the task takes no arguments: expected `null` or `[]`)")),
    }
}

/// A successful result, as JSON.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Outcome {
    match serde_json::to_vec(value) {
        Ok(payload) => Outcome { status: status::OK, payload },
        Err(e) => crate::codec::failed(format_args!("the task's result has no JSON form: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_argument_is_its_value_and_several_are_an_array() {
        assert_eq!(decode_args::<f64>(b"2.5", 1), Ok(2.5));
        assert_eq!(decode_args::<Vec<u8>>(b"[1,2]", 1), Ok(vec![1, 2]));
        assert_eq!(decode_args::<(i64, String)>(br#"[3,"x"]"#, 2), Ok((3, "x".to_owned())));
        let short = decode_args::<(i64, i64)>(b"[3]", 2).unwrap_err();
        assert!(short.contains("array of 2 arguments"), "{short}");
        let long = decode_args::<(i64, i64)>(b"[3,4,5]", 2).unwrap_err();
        assert!(long.contains("array of 2 arguments"), "{long}");
    }

    #[test]
    fn no_arguments_is_null_or_an_empty_array() {
        assert_eq!(no_args(b"null"), Ok(()));
        assert_eq!(no_args(b" [ ] "), Ok(()));
        assert!(no_args(b"[1]").unwrap_err().contains("takes no arguments"));
        assert!(no_args(b"{}").is_err());
    }

    #[test]
    fn results_are_json() {
        assert_eq!(ok(&(1u8, "a")).payload, br#"[1,"a"]"#);
        assert_eq!(ok(&Some(f64::NAN)).payload, b"null");
    }
}
