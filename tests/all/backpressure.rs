//! Streaming maps pull their inputs lazily: an endless iterator runs in
//! bounded memory, and dropping a stream stops it.

use crate::common;

use common::demo_pool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An endless iterator of inputs that counts how many were pulled.
fn counted(pulled: Arc<AtomicUsize>) -> impl Iterator<Item = (i64, i64)> {
    (0i64..)
        .inspect(move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        })
        .map(|i| (i, 1))
}

#[test]
fn imap_over_an_endless_iterator_pulls_only_a_window_ahead() {
    let pool = demo_pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let results: Vec<i64> =
        pool.imap::<_, i64>("add", counted(pulled.clone())).unwrap().take(1000).map(Result::unwrap).collect();
    assert_eq!(results, (1..=1000).collect::<Vec<_>>());
    let ahead = pulled.load(Ordering::SeqCst) - 1000;
    // 2 workers × 4 chunks of one input (the count is unknown, so chunks of 1).
    assert!(ahead <= 8, "pulled {ahead} inputs beyond those consumed");
}

#[test]
fn imap_unordered_over_an_endless_iterator_is_bounded_too() {
    let pool = demo_pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let stream = pool.task("add").unwrap().chunk_size(16).imap_unordered::<_, i64>(counted(pulled.clone())).unwrap();
    let n = stream.take(5000).filter(|(_, r)| r.is_ok()).count();
    assert_eq!(n, 5000);
    let ahead = pulled.load(Ordering::SeqCst) - 5000;
    assert!(ahead <= 8 * 16, "pulled {ahead} inputs beyond those consumed");
}

#[test]
fn a_dropped_stream_stops_and_the_pool_goes_on() {
    let pool = demo_pool(1);
    let pulled = Arc::new(AtomicUsize::new(0));
    {
        let mut stream = pool.imap::<_, i64>("add", counted(pulled.clone())).unwrap();
        assert_eq!(stream.next().unwrap().unwrap(), 1);
    }
    let after_drop = pulled.load(Ordering::SeqCst);
    assert_eq!(pool.call::<_, i64>("add", (2i64, 2i64)).unwrap(), 4);
    assert_eq!(pulled.load(Ordering::SeqCst), after_drop, "nothing is pulled after the drop");
}

#[test]
fn an_ordered_stream_waits_for_a_slow_head_without_unbounded_buffering() {
    let pool = demo_pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    // Input 0 is slow; the rest are quick. The stream must not race ahead.
    let inputs = (0u64..)
        .inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .map(|i| (if i == 0 { 3_000_000u64 } else { 10 }, i));
    let mut stream = pool.imap::<_, u64>("pi_hits", inputs).unwrap();
    assert!(stream.next().unwrap().is_ok());
    assert!(pulled.load(Ordering::SeqCst) <= 1 + 8, "pulled {}", pulled.load(Ordering::SeqCst));
}
