//! Tasks over text.

use std::collections::BTreeMap;
use wasmpool_guest::task;

/// Number of whitespace-separated words in `text` (borrowed straight from
/// the argument buffer: no copy inside the guest).
#[task]
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// How often each word occurs, lower-cased and stripped of punctuation.
#[task]
pub fn word_frequencies(text: String) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
        if !word.is_empty() {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    counts
}

/// Parses a decimal integer; text that is not one is a task failure whose
/// message the host receives.
#[task]
pub fn parse_int(text: String) -> Result<i64, std::num::ParseIntError> {
    text.trim().parse()
}
