//! Python values to the JSON a task's entry point takes, and JSON results
//! back to Python values, in Rust: a map's per-input work, done without a
//! Python-level call per input (docs/python.md, "Arguments and results").
//!
//! Encoding follows `json.dumps` (what the package did before, and what a
//! task written in Python decodes with): the same values are accepted, the
//! same text meaning comes out, and what `json` refuses is refused. Bytes
//! become lists of numbers (a Rust task's `Vec<u8>`) and objects with a
//! `tolist` method (numpy arrays) their list. `NaN` and the infinities are
//! written as `json.dumps` writes them; the pool refuses them as input that
//! is not JSON, for that input alone.
//!
//! Decoding takes the common results (a number, `true`, `false`, `null`)
//! in Rust and hands anything else to `json.loads`, so values come back as
//! Python's own `json` reads them (integers of any size, exact).

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};

/// Deepest nesting of lists and dicts in an argument: deeper (or a list
/// that contains itself) is refused rather than overflowing the stack, as
/// `json.dumps` refuses past Python's recursion limit (1000 by default).
/// Tasks decode far less deep (serde_json: 128 levels): such an input
/// fails alone, as input that is not JSON for the task.
pub(crate) const MAX_DEPTH: usize = 1000;

/// How many arguments a task takes: `(required, most)`, `most` `None` for
/// `*args` (`TaskInfo::arity` in the library).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arity {
    pub required: usize,
    pub most: Option<usize>,
}

/// One input of a map as JSON: for a task of several parameters, a tuple
/// of its arguments (or, if it needs at least two, a list); for one, the
/// argument itself. A task that can take one argument or more gets
/// anything but a tuple wrapped as the one argument, so a list stays one
/// argument whatever its length. A task of none takes `None` or `()`.
pub(crate) fn encode_item(item: &Bound<'_, PyAny>, arity: Arity, out: &mut Vec<u8>) -> PyResult<()> {
    let tuple = item.cast::<PyTuple>().ok();
    if arity.most == Some(0) && (item.is_none() || tuple.as_ref().is_some_and(|t| t.is_empty())) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let several = arity.most.is_none_or(|most| most >= 2);
    match tuple {
        Some(tuple) if several => encode_sequence(tuple.iter(), out, 0),
        _ if several && arity.required <= 1 => {
            out.push(b'[');
            encode(item, out, 1)?;
            out.push(b']');
            Ok(())
        }
        _ => encode(item, out, 0),
    }
}

/// `value` as compact JSON text, appended to `out`.
pub(crate) fn encode(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "nested more than {MAX_DEPTH} lists or dicts deep (or a list or dict that contains itself)"
        )));
    }
    // The order of `json`'s encoder: str, None, bool, int, float, list and
    // tuple, dict, then what it cannot encode by itself.
    if let Ok(text) = value.cast::<PyString>() {
        return encode_str(text, out);
    }
    if value.is_none() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        out.extend_from_slice(if flag.is_true() { b"true" } else { b"false" });
        return Ok(());
    }
    if let Ok(int) = value.cast::<PyInt>() {
        return encode_int(int, out);
    }
    if let Ok(float) = value.cast::<PyFloat>() {
        encode_float(float.value(), out);
        return Ok(());
    }
    if let Ok(list) = value.cast::<PyList>() {
        return encode_sequence(list.iter(), out, depth);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return encode_sequence(tuple.iter(), out, depth);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        out.push(b'{');
        // A copy of the items: code run while encoding (a `tolist`) may
        // change the dict.
        for (n, pair) in dict.items().iter().enumerate() {
            let (key, item): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
            if n > 0 {
                out.push(b',');
            }
            encode_key(&key, out)?;
            out.push(b':');
            encode(&item, out, depth + 1)?;
        }
        out.push(b'}');
        return Ok(());
    }
    // What `json.dumps` needs its `default` for: bytes as lists of numbers
    // (a task's `Vec<u8>`), and array-likes with `tolist` (numpy).
    if value.is_instance_of::<PyBytes>()
        || value.is_instance_of::<PyByteArray>()
        || value.is_instance_of::<PyMemoryView>()
    {
        let bytes: Vec<u8> = value.py().get_type::<PyBytes>().call1((value,))?.extract()?;
        out.push(b'[');
        for (n, byte) in bytes.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(itoa::Buffer::new().format(*byte).as_bytes());
        }
        out.push(b']');
        return Ok(());
    }
    match value.getattr("tolist") {
        Ok(tolist) if tolist.is_callable() => return encode(&tolist.call0()?, out, depth + 1),
        Err(e) if !e.is_instance_of::<PyAttributeError>(value.py()) => return Err(e),
        _ => {}
    }
    Err(PyTypeError::new_err(format!(
        "a {} cannot be a task's argument: arguments are numbers, strings, booleans, None, and lists, tuples \
         and dicts of them",
        value.get_type().name()?
    )))
}

fn encode_sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: usize,
) -> PyResult<()> {
    out.push(b'[');
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        encode(&item, out, depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

/// A str as a JSON string. One that is not valid Unicode (a lone
/// surrogate, as `surrogateescape` makes of undecodable bytes) is written
/// as `json.dumps` writes it, with `\uXXXX` escapes.
fn encode_str(text: &Bound<'_, PyString>, out: &mut Vec<u8>) -> PyResult<()> {
    match text.to_cow() {
        Ok(text) => serde_json::to_writer(&mut *out, &*text).map_err(|e| PyValueError::new_err(e.to_string())),
        Err(_) => {
            static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let escaped = DUMPS.import(text.py(), "json", "dumps")?.call1((text,))?;
            out.extend_from_slice(escaped.cast::<PyString>()?.to_cow()?.as_bytes());
            Ok(())
        }
    }
}

/// An integer of any size, in decimal as `int.__repr__` writes it (what
/// `json.dumps` writes, for `int` subclasses too).
fn encode_int(int: &Bound<'_, PyInt>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(small) = int.extract::<i64>() {
        out.extend_from_slice(itoa::Buffer::new().format(small).as_bytes());
    } else if let Ok(large) = int.extract::<u64>() {
        out.extend_from_slice(itoa::Buffer::new().format(large).as_bytes());
    } else {
        out.extend_from_slice(int_repr(int.as_any())?.as_bytes());
    }
    Ok(())
}

/// `int.__repr__(value)`: the digits of an int or of a subclass's value.
fn int_repr(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value.py().get_type::<PyInt>().call_method1("__repr__", (value,))?.extract()
}

/// How `json.dumps` writes a float that is not finite: `NaN`, `Infinity`,
/// `-Infinity`; `None` for a finite one.
fn non_finite(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("NaN")
    } else if value.is_infinite() {
        Some(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        None
    }
}

/// A float as its shortest text that reads back to the same value (as
/// `float.__repr__` is), and `NaN`, `Infinity` and `-Infinity` as
/// `json.dumps` writes them.
fn encode_float(value: f64, out: &mut Vec<u8>) {
    match non_finite(value) {
        Some(text) => out.extend_from_slice(text.as_bytes()),
        // A finite f64 always serializes.
        None => {
            let _ = serde_json::to_writer(&mut *out, &value);
        }
    }
}

/// A dict key as `json.dumps` writes it: a str as itself; an int, float,
/// bool or None as the text of its JSON value, in quotes.
fn encode_key(key: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(text) = key.cast::<PyString>() {
        return encode_str(text, out);
    }
    let text = if key.is_none() {
        "null".to_owned()
    } else if let Ok(flag) = key.cast::<PyBool>() {
        (if flag.is_true() { "true" } else { "false" }).to_owned()
    } else if key.is_instance_of::<PyInt>() {
        int_repr(key)?
    } else if let Ok(float) = key.cast::<PyFloat>() {
        match non_finite(float.value()) {
            Some(text) => text.to_owned(),
            None => key.py().get_type::<PyFloat>().call_method1("__repr__", (key,))?.extract()?,
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "keys must be str, int, float, bool or None, not {}",
            key.get_type().name()?
        )));
    };
    serde_json::to_writer(&mut *out, &text).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A result's (or a message's) JSON text as a Python value, as
/// `json.loads` reads it. `Err` is `json.loads`'s own error (`ValueError`
/// for an integer over Python's digit limit, `RecursionError` for JSON
/// nested past the recursion limit).
pub(crate) fn decode<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Some(value) = decode_scalar(py, text) {
        return Ok(value);
    }
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS.import(py, "json", "loads")?.call1((text,))
}

/// The value of `text` if it is a lone `true`, `false`, `null`, an integer
/// of at most 18 digits or a float: what most results are. `None` for
/// anything else, which `json.loads` then reads.
fn decode_scalar<'py>(py: Python<'py>, text: &str) -> Option<Bound<'py, PyAny>> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b't' if text == "true" => return Some(PyBool::new(py, true).to_owned().into_any()),
        b'f' if text == "false" => return Some(PyBool::new(py, false).to_owned().into_any()),
        b'n' if text == "null" => return Some(py.None().into_bound(py)),
        b'-' | b'0'..=b'9' => {}
        _ => return None,
    }
    if !is_json_number(bytes) {
        return None;
    }
    if bytes.iter().all(|b| b.is_ascii_digit() || *b == b'-') {
        // At most 18 digits always fits an i64; longer goes to `json`.
        let small: i64 = if bytes.len() <= 18 { text.parse().ok()? } else { return None };
        return small.into_pyobject(py).ok().map(Bound::into_any);
    }
    // Rust's parse rounds correctly, as Python's `float()` does.
    let value: f64 = text.parse().ok()?;
    Some(PyFloat::new(py, value).into_any())
}

/// Whether `bytes` is exactly one number of JSON's grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(bytes: &[u8]) -> bool {
    let mut rest = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let int = digits(rest);
    if int == 0 || (int > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[int..];
    if let Some(after) = rest.strip_prefix(b".") {
        let frac = digits(after);
        if frac == 0 {
            return false;
        }
        rest = &after[frac..];
    }
    if let Some(after) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let after = after.strip_prefix(b"+").or_else(|| after.strip_prefix(b"-")).unwrap_or(after);
        let exp = digits(after);
        if exp == 0 {
            return false;
        }
        rest = &after[exp..];
    }
    rest.is_empty()
}
