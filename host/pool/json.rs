//! Calling tasks with JSON: each task's JSON entry point
//! (`wasmpool_json_<name>`, which the guest SDK adds to every `#[task]`)
//! decodes the arguments and encodes the result with the task's own serde
//! types, so a JSON caller needs no glue per task.
//!
//! The host checks each input before it is queued: it must be one JSON
//! value, and for a task of several arguments an array of exactly that many
//! (one argument: the value itself; none: `null` or `[]`). Results are
//! checked too, since the guest wrote them: each is one JSON value, handed
//! back as compact text on a single line.
//!
//! ```no_run
//! # fn main() -> wasmpool::Result<()> {
//! # let pool = wasmpool::Pool::builder().module_file("guest_tasks.wasm").build()?;
//! let add = pool.task("add")?.json()?;
//! assert_eq!(add.call("[2, 40]")?, "42");
//! let sums: Vec<_> = add.imap(["[1,2]", "[3,4]"])?.collect();
//! # Ok(()) }
//! ```

use crate::decode::as_message_failure;
use crate::error::{Result, TaskError, TaskFailure};
use crate::pool::TaskRef;
use crate::runtime::module::{Arity, TaskInfo};
use crate::runtime::outbox::{RawEvent, Sent};
use crate::scheduler::stream::{Imap, ImapUnordered};
use crate::text::{is_unsafe, push_json_escape};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::value::RawValue;
use std::time::Duration;

/// Longest input text quoted back in an error message, in characters.
const QUOTED_INPUT_CHARS: usize = 80;

/// A task called through its JSON entry point, from
/// [`TaskRef::json`](crate::TaskRef::json).
#[derive(Clone)]
pub struct JsonTask<'pool> {
    task: TaskRef<'pool>,
}

/// The inputs of a JSON map, each checked against the task's arity before
/// it is queued; see [`JsonTask::imap`].
pub struct JsonInputs<I> {
    inputs: I,
    arity: Arity,
    signature: String,
}

impl<'pool> JsonTask<'pool> {
    /// `task` must already target the JSON entry point.
    pub(crate) fn new(task: TaskRef<'pool>) -> Self {
        JsonTask { task }
    }

    /// The task's description from the module.
    pub fn info(&self) -> &TaskInfo {
        self.task.info()
    }

    /// The same task, with what its calls send while they run (messages
    /// and progress reports) queued for the [`JsonEvents`] returned
    /// beside it. The queue holds at most `capacity` events: a task that
    /// sends more waits for room (up to its deadline), so read the events
    /// while its results come in. Dropping the `JsonEvents` lets the
    /// tasks go on, their messages dropped.
    ///
    /// Wait for results with a timeout and take the events between waits:
    /// a task whose events nobody takes waits for room, and its result
    /// never comes.
    ///
    /// ```no_run
    /// # fn main() -> wasmpool::Result<()> {
    /// # let pool = wasmpool::Pool::builder().module_file("guest_tasks.wasm").build()?;
    /// use std::task::Poll;
    /// use std::time::Duration;
    /// // `collatz` sends every value it passes: 111 messages for 27.
    /// let (task, events) = pool.task("collatz")?.json()?.listened(64);
    /// let mut steps = task.imap(["27", "97"])?;
    /// loop {
    ///     while let Some(event) = events.try_next() {
    ///         println!("{event:?}"); // JsonEvent::Message { index: 0, message: Ok("82") }, …
    ///     }
    ///     match steps.next_timeout(Duration::from_millis(5)) {
    ///         Poll::Ready(Some(result)) => println!("{} steps", result?),
    ///         Poll::Ready(None) => break,
    ///         Poll::Pending => {}
    ///     }
    /// }
    /// // What the last inputs sent before their results.
    /// while let Some(event) = events.try_next() {
    ///     println!("{event:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn listened(self, capacity: usize) -> (JsonTask<'pool>, JsonEvents) {
        let (events, incoming) = crossbeam_channel::bounded(capacity.max(1));
        let task = JsonTask { task: self.task.with_events(events) };
        let name = task.info().name.clone();
        (task, JsonEvents { incoming, task: name })
    }

    /// The task underneath, targeting the JSON entry point.
    pub(crate) fn task_ref(&self) -> &TaskRef<'pool> {
        &self.task
    }

    /// `args` checked to be this task's arguments as JSON (see
    /// [`imap`](Self::imap)).
    pub(crate) fn check(&self, args: &[u8]) -> Result<(), TaskFailure> {
        let info = self.info();
        check_input(args, info.arity(), &info.to_string())
    }

    /// Runs the task once on `args` (JSON text) and returns its result as
    /// compact JSON text.
    pub fn call(&self, args: impl AsRef<[u8]>) -> Result<String> {
        match self.imap(std::iter::once(args))?.next() {
            Some(result) => Ok(result?),
            None => {
                Err(TaskError { task: self.info().name.clone(), index: 0, failure: TaskFailure::PoolClosed }.into())
            }
        }
    }

    /// A lazy map over JSON inputs, yielding each input's result (compact
    /// JSON text) in input order, with bounded memory like
    /// [`TaskRef::imap`]. An input that is not valid JSON, or not the
    /// task's arguments, is that input's [`TaskFailure::InvalidJson`].
    pub fn imap<I>(&self, inputs: I) -> Result<Imap<'pool, JsonInputs<I::IntoIter>, String>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let dispatch = self.task.dispatch_with(self.inputs(inputs), |checked| checked)?;
        Ok(Imap::with_decoder(dispatch, decode_json_result))
    }

    /// Like [`imap`](Self::imap), yielding `(input index, result)` as soon as
    /// each result is ready.
    pub fn imap_unordered<I>(&self, inputs: I) -> Result<ImapUnordered<'pool, JsonInputs<I::IntoIter>, String>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let dispatch = self.task.dispatch_with(self.inputs(inputs), |checked| checked)?;
        Ok(ImapUnordered::with_decoder(dispatch, decode_json_result))
    }

    /// Like [`imap`](Self::imap), but each input comes with its own index:
    /// its seed derives from that index instead of its position, as if it
    /// stood there in a longer map. For resuming a map part-way, or over
    /// the gaps another run left. Results come in the order given.
    /// Indices should be distinct: two inputs of one index get one seed.
    pub fn imap_indexed<I, B>(&self, inputs: I) -> Result<Imap<'pool, IndexedJsonInputs<I::IntoIter>, String>>
    where
        I: IntoIterator<Item = (usize, B)>,
        B: AsRef<[u8]>,
    {
        let dispatch = self.task.dispatch_with(self.indexed(inputs), |(_, checked)| checked)?;
        Ok(Imap::with_decoder(dispatch.with_indices(|(index, _)| *index), decode_json_result))
    }

    /// Like [`imap_unordered`](Self::imap_unordered), with each input's own
    /// index as in [`imap_indexed`](Self::imap_indexed); yields that index
    /// with each result.
    pub fn imap_unordered_indexed<I, B>(
        &self,
        inputs: I,
    ) -> Result<ImapUnordered<'pool, IndexedJsonInputs<I::IntoIter>, String>>
    where
        I: IntoIterator<Item = (usize, B)>,
        B: AsRef<[u8]>,
    {
        let dispatch = self.task.dispatch_with(self.indexed(inputs), |(_, checked)| checked)?;
        Ok(ImapUnordered::with_decoder(dispatch.with_indices(|(index, _)| *index), decode_json_result))
    }

    fn indexed<I: IntoIterator>(&self, inputs: I) -> IndexedJsonInputs<I::IntoIter> {
        IndexedJsonInputs { inner: self.inputs(inputs) }
    }

    fn inputs<I: IntoIterator>(&self, inputs: I) -> JsonInputs<I::IntoIter> {
        let info = self.info();
        JsonInputs { inputs: inputs.into_iter(), arity: info.arity(), signature: info.to_string() }
    }
}

impl<I> Iterator for JsonInputs<I>
where
    I: Iterator,
    I::Item: AsRef<[u8]>,
{
    type Item = Result<Vec<u8>, TaskFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.inputs.next()?;
        let bytes = input.as_ref();
        Some(check_input(bytes, self.arity, &self.signature).map(|()| bytes.to_vec()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inputs.size_hint()
    }
}

/// The inputs of an indexed JSON map ([`JsonTask::imap_indexed`]): each
/// input's index, and the input checked as in [`JsonInputs`].
pub struct IndexedJsonInputs<I> {
    inner: JsonInputs<I>,
}

impl<I, B> Iterator for IndexedJsonInputs<I>
where
    I: Iterator<Item = (usize, B)>,
    B: AsRef<[u8]>,
{
    type Item = (usize, Result<Vec<u8>, TaskFailure>);

    fn next(&mut self) -> Option<Self::Item> {
        let (index, input) = self.inner.inputs.next()?;
        let bytes = input.as_ref();
        Some((index, check_input(bytes, self.inner.arity, &self.inner.signature).map(|()| bytes.to_vec())))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.inputs.size_hint()
    }
}

/// Checks that `text` is one JSON value (UTF-8) holding arguments for a
/// task of `arity`, as the task's JSON entry point reads them: none as
/// `null` or `[]`; for a task of at most one parameter, any value as its
/// argument; for another, an array of as many arguments as it takes, or
/// (if it can be called with one) any other value as its one argument.
pub(crate) fn check_input(text: &[u8], arity: Arity, signature: &str) -> Result<(), TaskFailure> {
    let invalid = |why: String| TaskFailure::InvalidJson(format!("{why}, in {}", quote(text)));
    let value: &RawValue = serde_json::from_slice(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let Arity { required, most } = arity;
    if most == 1 || (most > 1 && required <= 1 && !value.get().trim_start().starts_with('[')) {
        return Ok(());
    }
    if most == 0 && value.get() == "null" {
        return Ok(());
    }
    let wanted = if most == 0 {
        return match serde_json::from_str::<Vec<&RawValue>>(value.get()) {
            Ok(items) if items.is_empty() => Ok(()),
            Ok(items) => Err(invalid(format!("`{signature}` takes no arguments, but the array has {}", items.len()))),
            Err(_) => Err(invalid(format!("`{signature}` takes no arguments: pass `null` or `[]`"))),
        };
    } else if most == Arity::UNBOUNDED {
        format!("at least {required} arguments")
    } else if required == most {
        format!("{most} arguments")
    } else {
        format!("from {required} to {most} arguments")
    };
    match serde_json::from_str::<Vec<&RawValue>>(value.get()) {
        Ok(items) if (required..=most).contains(&items.len()) || required <= 1 => Ok(()),
        Ok(items) => Err(invalid(format!("`{signature}` takes {wanted}, but the array has {}", items.len()))),
        Err(_) => Err(invalid(format!("`{signature}` takes {wanted}: pass a JSON array of them"))),
    }
}

/// The arguments of a task of `arity`, given as a JSON array with one
/// element per argument (as an init task's, from
/// [`PoolBuilder::init_task_json`](crate::PoolBuilder::init_task_json)),
/// in the convention of JSON calls: the element itself for a task of one
/// parameter, the array otherwise.
pub(crate) fn args_from_array(array: &str, arity: Arity) -> Result<String, TaskFailure> {
    let items: Vec<&RawValue> = serde_json::from_str(array).map_err(|e| {
        TaskFailure::InvalidJson(format!("the arguments must be a JSON array, one element per parameter: {e}"))
    })?;
    if !(arity.required..=arity.most).contains(&items.len()) {
        let wanted = if arity.most == Arity::UNBOUNDED {
            format!("at least {}", arity.required)
        } else if arity.required == arity.most {
            arity.most.to_string()
        } else {
            format!("from {} to {}", arity.required, arity.most)
        };
        return Err(TaskFailure::InvalidJson(format!(
            "the task takes {wanted} argument(s), but the array has {}",
            items.len()
        )));
    }
    Ok(match items.as_slice() {
        [only] if arity.most == 1 => only.get().to_owned(),
        _ => array.to_owned(),
    })
}

/// What a task called through its JSON entry point sent while it ran,
/// from [`JsonEvents`]. `index` is the input's index in its map.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonEvent {
    /// A message: its JSON text, checked and compact (one value, on one
    /// line), or why it is not JSON
    /// ([`TaskFailure::DecodeMessage`]). Rust tasks send through their
    /// `Sender`, tasks written in Python with `wasmpool.send(value)`.
    Message {
        /// The input's index.
        index: usize,
        /// The message.
        message: std::result::Result<String, TaskError>,
    },
    /// The task reported `progress(done, total)`.
    Progress {
        /// The input's index.
        index: usize,
        /// Work done so far, in the task's own units.
        done: u64,
        /// Work in all, in the same units.
        total: u64,
    },
}

/// The messages and progress reports of the calls of a listened
/// [`JsonTask`] ([`JsonTask::listened`]), in the order they were sent.
#[derive(Debug)]
pub struct JsonEvents {
    incoming: Receiver<RawEvent>,
    task: String,
}

impl JsonEvents {
    /// The next event, if one is waiting.
    pub fn try_next(&self) -> Option<JsonEvent> {
        loop {
            let raw = self.incoming.try_recv().ok()?;
            if let Some(event) = self.decode(raw) {
                return Some(event);
            }
        }
    }

    /// The next event, waiting at most `timeout` for it.
    pub fn next_timeout(&self, timeout: Duration) -> Option<JsonEvent> {
        let until = std::time::Instant::now() + timeout;
        loop {
            let raw = match self.incoming.recv_deadline(until) {
                Ok(raw) => raw,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            };
            if let Some(event) = self.decode(raw) {
                return Some(event);
            }
        }
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.incoming.is_empty()
    }

    /// How many events are waiting.
    pub fn len(&self) -> usize {
        self.incoming.len()
    }

    fn decode(&self, raw: RawEvent) -> Option<JsonEvent> {
        match raw {
            RawEvent::Sent { index, sent: Sent::Message(bytes) } => Some(JsonEvent::Message {
                index,
                message: decode_json_message(&bytes).map_err(|failure| TaskError {
                    task: self.task.clone(),
                    index,
                    failure,
                }),
            }),
            RawEvent::Sent { index, sent: Sent::Progress { done, total } } => {
                Some(JsonEvent::Progress { index, done, total })
            }
            // A map's results take their own way, never this queue.
            RawEvent::Finished { .. } => None,
        }
    }
}

/// A message a task sent through JSON, checked and made compact as a
/// result is.
pub(crate) fn decode_json_message(bytes: &[u8]) -> Result<String, TaskFailure> {
    decode_json_result(bytes).map_err(as_message_failure)
}

/// A task's JSON result, checked and made compact: one value, on one line.
pub(crate) fn decode_json_result(bytes: &[u8]) -> Result<String, TaskFailure> {
    let invalid = |reason: String| TaskFailure::DecodeResult { expected: "JSON".into(), reason };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    let value: &RawValue = serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    Ok(compact(value.get()))
}

/// Valid JSON `text` without the whitespace between its tokens, so that it
/// fits on one line (strings cannot hold raw line breaks, only escaped
/// ones). Numbers and strings keep their values and their text, but for
/// the characters a terminal could act on that JSON lets a string hold raw
/// (DEL, the C1 controls, the bidirectional controls: see [`crate::text`]),
/// which are written as `\uXXXX` escapes. (JSON itself refuses raw C0
/// controls in strings.)
fn compact(text: &str) -> String {
    // One pass: `is_unsafe` covers the whitespace other than a space.
    if !text.chars().any(|c| c == ' ' || is_unsafe(c)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                (false, c) if is_unsafe(c) => {
                    push_json_escape(&mut out, c);
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    out
}

/// `text`, shortened for an error message.
fn quote(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(QUOTED_INPUT_CHARS).collect();
    if chars.next().is_some() { format!("`{head}…`") } else { format!("`{head}`") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task of exactly `n` parameters.
    fn ex(n: usize) -> Arity {
        Arity { required: n, most: n }
    }

    #[test]
    fn inputs_must_be_json_holding_the_arguments() {
        assert_eq!(check_input(b"2.5", ex(1), "sqrt(x: f64) -> f64"), Ok(()));
        assert_eq!(check_input(b" [1, 2] ", ex(1), "sum(v: Vec<u8>) -> u8"), Ok(()));
        assert_eq!(check_input(b"[1, 2]", ex(2), "add(a: i64, b: i64) -> i64"), Ok(()));
        assert_eq!(check_input(b"null", ex(0), "noop() -> ()"), Ok(()));
        assert_eq!(check_input(b"[]", ex(0), "noop() -> ()"), Ok(()));
        let failure = |text: &str, n| match check_input(text.as_bytes(), ex(n), "add(a: i64, b: i64) -> i64") {
            Err(TaskFailure::InvalidJson(why)) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(failure("[1, 2", 2).starts_with("not JSON"), "{}", failure("[1, 2", 2));
        assert!(failure("1 2", 1).contains("not JSON"));
        assert!(failure("[1, 2, 3]", 2).contains("takes 2 arguments, but the array has 3"));
        assert!(failure("7", 2).contains("takes 2 arguments: pass a JSON array of them"));
        assert!(failure("7", 0).contains("takes no arguments"));
        assert!(failure("[7]", 0).contains("but the array has 1"));
        let Err(TaskFailure::InvalidJson(why)) = check_input(b"\"\xff\"", ex(1), "f") else { panic!("not UTF-8") };
        assert!(why.starts_with("not JSON"), "{why}");
    }

    #[test]
    fn parameters_with_defaults_may_be_left_out() {
        // `scaled(x, factor=10)`: one argument bare, or an array of one or two.
        let scaled = Arity { required: 1, most: 2 };
        for text in ["4", "[4]", "[4, 2]", "\"a\"", "{}"] {
            assert_eq!(check_input(text.as_bytes(), scaled, "scaled"), Ok(()), "{text}");
        }
        // An array it cannot spread is its one argument (a list of three).
        assert_eq!(check_input(b"[1, 2, 3]", scaled, "scaled"), Ok(()));
        // `window(a, b, size=3)`: two or three, always an array.
        let window = Arity { required: 2, most: 3 };
        assert_eq!(check_input(b"[1, 2]", window, "w"), Ok(()));
        assert_eq!(check_input(b"[1, 2, 3]", window, "w"), Ok(()));
        let Err(TaskFailure::InvalidJson(why)) = check_input(b"[1]", window, "w") else { panic!("one for two") };
        assert!(why.contains("takes from 2 to 3 arguments, but the array has 1"), "{why}");
        let Err(TaskFailure::InvalidJson(why)) = check_input(b"7", window, "w") else { panic!("bare for two") };
        assert!(why.contains("pass a JSON array of them"), "{why}");
        // Everything optional: nothing at all as well.
        assert_eq!(check_input(b"[]", Arity { required: 0, most: 2 }, "f"), Ok(()));
        assert_eq!(args_from_array("[4]", scaled), Ok("[4]".to_owned()));
        assert_eq!(args_from_array("[4, 2]", scaled), Ok("[4, 2]".to_owned()));
        let Err(TaskFailure::InvalidJson(why)) = args_from_array("[]", scaled) else { panic!("none for one") };
        assert!(why.contains("takes from 1 to 2 argument(s), but the array has 0"), "{why}");
        // `f(a, *rest)`: one or more.
        let rest = Arity { required: 1, most: Arity::UNBOUNDED };
        assert_eq!(check_input(b"[1, 2, 3, 4]", rest, "f"), Ok(()));
        assert_eq!(check_input(b"7", rest, "f"), Ok(()));
        let Err(TaskFailure::InvalidJson(why)) =
            check_input(b"[1, 2]", Arity { required: 3, most: Arity::UNBOUNDED }, "f")
        else {
            panic!("two for three or more")
        };
        assert!(why.contains("takes at least 3 arguments, but the array has 2"), "{why}");
    }

    #[test]
    fn an_array_of_arguments_becomes_a_calls_arguments() {
        assert_eq!(args_from_array("[]", ex(0)), Ok("[]".to_owned()));
        assert_eq!(args_from_array(" [ [1, 2] ] ", ex(1)), Ok("[1, 2]".to_owned()));
        assert_eq!(args_from_array(r#"[1, "a"]"#, ex(2)), Ok(r#"[1, "a"]"#.to_owned()));
        let Err(TaskFailure::InvalidJson(why)) = args_from_array("[1, 2]", ex(1)) else { panic!("two for one") };
        assert!(why.contains("takes 1 argument(s), but the array has 2"), "{why}");
        let Err(TaskFailure::InvalidJson(why)) = args_from_array("7", ex(1)) else { panic!("not an array") };
        assert!(why.contains("must be a JSON array"), "{why}");
    }

    #[test]
    fn long_inputs_are_shortened_in_messages() {
        let long = format!("[{}", "1,".repeat(200));
        let Err(TaskFailure::InvalidJson(why)) = check_input(long.as_bytes(), ex(2), "f") else { panic!() };
        assert!(why.ends_with("…`"), "{why}");
        assert!(why.len() < 300);
    }

    #[test]
    fn results_come_back_compact_and_checked() {
        assert_eq!(decode_json_result(b"[1,2]"), Ok("[1,2]".to_owned()));
        assert_eq!(decode_json_result(b" [1,\n 2] "), Ok("[1,2]".to_owned()));
        assert_eq!(decode_json_result(br#"{"a b": "c d"}"#), Ok(r#"{"a b":"c d"}"#.to_owned()));
        assert_eq!(
            decode_json_result(br#"[ "q\" \\", 1e400 ,  340282366920938463463374607431768211455 ]"#),
            Ok(r#"["q\" \\",1e400,340282366920938463463374607431768211455]"#.to_owned())
        );
        assert!(matches!(decode_json_result(b"1\n2"), Err(TaskFailure::DecodeResult { .. })));
        // Raw control characters in a string are not JSON; escaped ones stay escaped.
        assert!(decode_json_result(b"\"\x1b[2J\"").is_err());
        assert_eq!(decode_json_result(br#""\u001b[2J\u0000""#), Ok(r#""\u001b[2J\u0000""#.to_owned()));
        // Those JSON lets a string hold raw are escaped, keeping the value.
        let raw = "\"del\u{7f} csi\u{9b}31m rlo\u{202e}\"";
        let kept = decode_json_result(raw.as_bytes()).unwrap();
        assert_eq!(kept, r#""del\u007f csi\u009b31m rlo\u202e""#);
        assert_eq!(serde_json::from_str::<String>(&kept).unwrap(), serde_json::from_str::<String>(raw).unwrap());
        assert!(matches!(decode_json_result(&[0xff]), Err(TaskFailure::DecodeResult { .. })));
    }

    proptest::proptest! {
        /// Pretty-printed JSON comes back as serde's compact form, strings
        /// with spaces, quotes and escaped line breaks included.
        #[test]
        fn pretty_results_come_back_compact(
            entries in proptest::collection::vec(("[ a-z\\\\\"\n]{0,8}", proptest::prelude::any::<i64>(), proptest::option::of(-1e9f64..1e9)), 0..6),
        ) {
            let value = serde_json::json!(entries);
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            proptest::prop_assert_eq!(decode_json_result(pretty.as_bytes()).unwrap(), serde_json::to_string(&value).unwrap());
        }

        /// Inputs and results are bytes from a caller or a guest: any of
        /// them must be accepted or refused, never panic, and an accepted
        /// result is a single line.
        #[test]
        fn arbitrary_text_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128), required in 0usize..4, extra in 0usize..2) {
            let _ = check_input(&bytes, Arity { required, most: required + extra }, "t");
            if let Ok(line) = decode_json_result(&bytes) {
                proptest::prop_assert!(!line.contains('\n'));
                proptest::prop_assert!(!line.chars().any(is_unsafe), "{:?}", line);
                // Compacting keeps the value: the same JSON, without spaces.
                // (Where serde's own `Value` can hold it: not `1e400`.)
                if let Ok(before) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    proptest::prop_assert_eq!(Some(before), serde_json::from_str(&line).ok());
                }
            }
        }
    }
}
