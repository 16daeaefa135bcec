//! Messages and progress from running tasks: an `Exchange` sees them as
//! they are sent, in order, before each task's result; a flood is held
//! back, not buffered; oversized messages stop their task; a progress
//! callback hears every report. Thread and process workers alike.

use crate::common;

use common::scaled;
use guest_tasks::channels::collatz;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmpool::{Event, LimitExceeded, Pool, PoolBuilder, TaskFailure, WorkerKind};
use wasmpool_guest::Sender;

/// Long enough for any event in these tests, even under emulation.
const PATIENCE: Duration = Duration::from_secs(60);

fn builder(kind: WorkerKind) -> PoolBuilder {
    Pool::builder().module_file(guest_tasks::WASM_PATH).workers(2).worker_kind(kind)
}

/// The Collatz values of `n`, computed natively.
fn sequence(n: u64) -> Vec<u64> {
    let values = Sender::new();
    collatz(n, values.clone());
    values.sent()
}

each_kind! {
    fn an_exchange_gets_every_message_in_order_and_then_the_result(kind) {
        let pool = builder(kind).build().unwrap();
        let mut exchange = pool.exchange::<u64, u32>();
        let starts = [27u64, 6, 97, 1];
        for n in starts {
            exchange.start("collatz", n).unwrap();
        }
        assert_eq!(exchange.running(), 4);
        let mut messages: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for event in &mut exchange {
            match event {
                Event::Message { task, message } => {
                    assert!(!steps.contains_key(&task), "{kind:?}: task {task} sent a message after its result");
                    messages.entry(task).or_default().push(message.unwrap());
                }
                Event::Finished { task, result } => {
                    steps.insert(task, result.unwrap());
                }
                Event::Progress { .. } => panic!("collatz reports no progress"),
            }
        }
        assert_eq!(exchange.running(), 0);
        for (task, n) in starts.into_iter().enumerate() {
            let expected = sequence(n);
            assert_eq!(steps[&task] as usize, expected.len(), "{kind:?}: steps of {n}");
            assert_eq!(messages.remove(&task).unwrap_or_default(), expected, "{kind:?}: values of {n}");
        }
    }
}

each_kind! {
    fn messages_arrive_while_the_task_still_runs(kind) {
        // `send_then_spin` never returns: its message can only arrive mid-task.
        let pool = builder(kind).interruptible(true).build().unwrap();
        let mut exchange = pool.exchange::<u32, u64>();
        exchange.start("send_then_spin", 1u32).unwrap();
        match exchange.next_timeout(PATIENCE) {
            Some(Event::Message { task: 0, message: Ok(1) }) => {}
            other => panic!("{kind:?}: expected the task's message, got {other:?}"),
        }
        assert_eq!(exchange.running(), 1);
        exchange.cancel();
        match exchange.next_timeout(PATIENCE) {
            Some(Event::Finished { task: 0, result: Err(e) }) => {
                assert_eq!(e.failure, TaskFailure::Cancelled, "{kind:?}")
            }
            other => panic!("{kind:?}: expected the cancelled task's end, got {other:?}"),
        }
        assert_eq!(exchange.next_timeout(Duration::from_millis(10)), None);
    }
}

each_kind! {
    fn a_flooding_task_waits_for_room_and_host_memory_stays_bounded(kind) {
        const CAPACITY: usize = 4;
        let deadline = scaled(Duration::from_millis(400));
        let pool = builder(kind).deadline(deadline).build().unwrap();
        let mut exchange = pool.exchange_with_capacity::<Vec<u8>, u32>(CAPACITY);
        exchange.start("flood", (100_000u32, 16u32)).unwrap();
        // Read nothing until the task's deadline has passed.
        std::thread::sleep(deadline + scaled(Duration::from_millis(200)));
        let events: Vec<_> = exchange.by_ref().collect();
        let messages = events.iter().filter(|e| matches!(e, Event::Message { .. })).count();
        assert!(messages <= CAPACITY, "{kind:?}: {messages} messages were held for a queue of {CAPACITY}");
        match events.last() {
            Some(Event::Finished { result: Err(e), .. }) => {
                assert!(matches!(e.failure, TaskFailure::Limit(LimitExceeded::Deadline { .. })), "{kind:?}: {e}")
            }
            other => panic!("{kind:?}: expected the task to end at its deadline, got {other:?}"),
        }
        // The pool serves on.
        assert_eq!(pool.call::<_, i64>("add", (2i64, 3i64)).unwrap(), 5);
    }
}

each_kind! {
    fn an_oversized_message_stops_its_task_with_a_limit_error(kind) {
        let pool = builder(kind).max_message(1000).build().unwrap();
        let mut exchange = pool.exchange::<Vec<u8>, u32>();
        exchange.start("flood", (3u32, 100u32)).unwrap();
        exchange.start("flood", (3u32, 5000u32)).unwrap();
        let mut ends = BTreeMap::new();
        for event in &mut exchange {
            if let Event::Finished { task, result } = event {
                ends.insert(task, result);
            }
        }
        assert_eq!(ends[&0], Ok(3), "{kind:?}: small messages pass");
        let failure = &ends[&1].as_ref().unwrap_err().failure;
        assert!(
            matches!(failure, TaskFailure::Limit(LimitExceeded::Output { what, limit: 1000, .. }) if what == "message"),
            "{kind:?}: {failure}"
        );
        // Without a listener the cap holds too: it is the task's own limit.
        let plain = common::failure(pool.call::<_, u32>("flood", (1u32, 5000u32)));
        assert!(matches!(plain, TaskFailure::Limit(LimitExceeded::Output { .. })), "{kind:?}: {plain}");
    }
}

each_kind! {
    fn without_a_listener_messages_are_dropped_and_the_task_is_told(kind) {
        let pool = builder(kind).build().unwrap();
        let delivered: Vec<u32> = pool.map("flood", [(5u32, 10u32), (0, 10)]).unwrap();
        assert_eq!(delivered, [0, 0]);
        let steps: Vec<u32> = pool.map("collatz", [6u64, 27]).unwrap();
        assert_eq!(steps, [sequence(6).len() as u32, sequence(27).len() as u32]);
    }
}

each_kind! {
    fn progress_reaches_the_callback_and_the_exchange(kind) {
        let pool = builder(kind).build().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = pool.task("slow_sum").unwrap().on_progress(move |index, done, total| {
            sink.lock().unwrap().push((index, done, total));
        });
        let sums: Vec<u64> = task.map([100u64, 1000]).unwrap();
        assert_eq!(sums, [4950, 499_500]);
        let seen = seen.lock().unwrap().clone();
        for (index, n) in [(0usize, 100u64), (1, 1000)] {
            let reports: Vec<u64> = seen.iter().filter(|r| r.0 == index).map(|r| r.1).collect();
            assert_eq!(reports.len(), 10, "{kind:?}: nine steps and the end, for input {index}");
            assert!(reports.windows(2).all(|w| w[0] <= w[1]), "{kind:?}: {reports:?}");
            assert_eq!(reports.last(), Some(&n));
            assert!(seen.iter().filter(|r| r.0 == index).all(|r| r.2 == n));
        }

        let mut exchange = pool.exchange::<(), u64>();
        exchange.start("slow_sum", 50u64).unwrap();
        let events: Vec<_> = exchange.by_ref().collect();
        let reports = events.iter().filter(|e| matches!(e, Event::Progress { task: 0, total: 50, .. })).count();
        assert_eq!(reports, 10, "{kind:?}");
        assert_eq!(events.last(), Some(&Event::Finished { task: 0, result: Ok(1225) }));
    }
}

#[test]
fn a_message_of_the_wrong_type_is_an_error_event_and_the_task_goes_on() {
    let pool = builder(WorkerKind::Threads).build().unwrap();
    let mut exchange = pool.exchange::<String, u32>();
    exchange.start("collatz", 6u64).unwrap();
    let events: Vec<_> = exchange.by_ref().collect();
    let first = events.first().expect("events");
    match first {
        Event::Message { task: 0, message: Err(e) } => {
            assert_eq!(e.task, "collatz");
            assert!(matches!(e.failure, TaskFailure::DecodeMessage { .. }), "{e}");
        }
        other => panic!("expected an undecodable message, got {other:?}"),
    }
    assert_eq!(events.last(), Some(&Event::Finished { task: 0, result: Ok(8) }));
}

each_kind! {
    fn dropping_an_exchange_cancels_its_tasks_and_frees_the_workers(kind) {
        let pool = Pool::builder()
            .module_file(guest_tasks::WASM_PATH)
            .workers(1)
            .worker_kind(kind)
            .interruptible(true)
            .build()
            .unwrap();
        {
            let mut exchange = pool.exchange::<u32, u64>();
            exchange.start("send_then_spin", 1u32).unwrap();
            exchange.start("send_then_spin", 1u32).unwrap();
            assert!(matches!(exchange.next_timeout(PATIENCE), Some(Event::Message { .. })), "{kind:?}");
        }
        // The only worker was spinning: it must be free again.
        let handle = pool.submit::<_, i64>("add", (1i64, 1i64)).unwrap();
        match handle.wait_timeout(PATIENCE) {
            Ok(result) => assert_eq!(result.unwrap(), 2, "{kind:?}"),
            Err(_) => panic!("{kind:?}: the worker was not freed"),
        }
    }
}

#[test]
fn exchange_tasks_draw_the_seeds_of_their_numbers() {
    let pool = builder(WorkerKind::Threads).seed(11).build().unwrap();
    let mapped: Vec<u64> = pool.map("pi_hits_seeded", [1000u64; 3]).unwrap();
    let mut exchange = pool.exchange::<(), u64>();
    for _ in 0..3 {
        exchange.start("pi_hits_seeded", 1000u64).unwrap();
    }
    let mut from_exchange = [0u64; 3];
    for event in exchange {
        if let Event::Finished { task, result } = event {
            from_exchange[task] = result.unwrap();
        }
    }
    assert_eq!(from_exchange.to_vec(), mapped);
}

each_kind! {
    fn a_task_called_through_json_sends_json_to_an_exchange(kind) {
        // The same Rust task, called with JSON: its `Sender` writes JSON,
        // which the exchange decodes as its message type.
        let pool = builder(kind).build().unwrap();
        let mut exchange = pool.exchange::<serde_json::Value, serde_json::Value>();
        assert_eq!(exchange.start_json("collatz", "6").unwrap(), 0);
        assert_eq!(exchange.start_json("slow_sum", "10").unwrap(), 1);
        let bad = exchange.start_json("collatz", "[1,").unwrap_err();
        assert!(bad.to_string().contains("collatz"), "{kind:?}: {bad}");
        let (mut values, mut reports, mut results) = (Vec::new(), Vec::new(), BTreeMap::new());
        for event in &mut exchange {
            match event {
                Event::Message { task, message } => {
                    assert_eq!(task, 0);
                    assert!(!results.contains_key(&task), "{kind:?}: a message after the result");
                    values.push(message.unwrap().as_u64().unwrap());
                }
                Event::Progress { task, done, total } => reports.push((task, done, total)),
                Event::Finished { task, result } => {
                    results.insert(task, result.unwrap());
                }
            }
        }
        assert_eq!(values, sequence(6), "{kind:?}");
        assert_eq!(reports.last(), Some(&(1, 10, 10)), "{kind:?}");
        assert_eq!(results[&0], serde_json::json!(8));
        assert_eq!(results[&1], serde_json::json!(45));
    }
}

each_kind! {
    fn a_listened_json_map_gets_each_inputs_messages_before_its_result(kind) {
        let pool = builder(kind).build().unwrap();
        let (task, events) = pool.task("collatz").unwrap().json().unwrap().listened(4);
        let starts = [27u64, 6, 97];
        let mut stream = task.imap(starts.iter().map(|n| n.to_string())).unwrap();
        let mut sent: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut results = Vec::new();
        // A queue of 4 and sequences of over 100 values: the tasks wait
        // for room while the events are read here.
        loop {
            while let Some(event) = events.try_next() {
                match event {
                    wasmpool::JsonEvent::Message { index, message } => {
                        assert!(index >= results.len(), "{kind:?}: input {index}'s message after its result");
                        sent.entry(index).or_default().push(message.unwrap().parse().unwrap());
                    }
                    other => panic!("{kind:?}: collatz reports no progress: {other:?}"),
                }
            }
            match stream.next_timeout(Duration::from_millis(5)) {
                std::task::Poll::Ready(Some(result)) => {
                    // Its messages were queued before it: take them first.
                    while let Some(wasmpool::JsonEvent::Message { index, message }) = events.try_next() {
                        sent.entry(index).or_default().push(message.unwrap().parse().unwrap());
                    }
                    results.push(result.unwrap());
                }
                std::task::Poll::Ready(None) => break,
                std::task::Poll::Pending => {}
            }
        }
        for (index, n) in starts.into_iter().enumerate() {
            assert_eq!(results[index], sequence(n).len().to_string(), "{kind:?}");
            assert_eq!(sent.remove(&index).unwrap_or_default(), sequence(n), "{kind:?}: values of {n}");
        }
        assert!(events.try_next().is_none());
    }
}
