//! Every way of calling tasks: call, map, map_each, imap, imap_unordered,
//! submit (wait, wait_timeout, await) and broadcast.

use crate::common;

use common::demo_pool;
use std::collections::BTreeMap;
use std::time::Duration;
use wasmpool::TaskFailure;

#[test]
fn call_runs_one_task() {
    let pool = demo_pool(2);
    let sum: i64 = pool.call("add", (40i64, 2i64)).unwrap();
    assert_eq!(sum, 42);
    let words: u64 = pool.call("word_count", "the quick brown fox").unwrap();
    assert_eq!(words, 4);
    let () = pool.call("noop", ()).unwrap();
}

#[test]
fn map_returns_results_in_input_order() {
    let pool = demo_pool(3);
    let roots: Vec<f64> = pool.map("sqrt", (0..100).map(f64::from)).unwrap();
    let expected: Vec<f64> = (0..100).map(|x| f64::from(x).sqrt()).collect();
    assert_eq!(roots, expected);
}

#[test]
fn map_takes_several_arguments_per_input() {
    let pool = demo_pool(2);
    let (w, h) = (64u32, 48u32);
    let rows: Vec<Vec<u8>> = pool.map("mandel_row", (0..h).map(|y| (y, w, h, 64u32))).unwrap();
    let native: Vec<Vec<u8>> = (0..h).map(|y| guest_tasks::mandelbrot::mandel_row(y, w, h, 64)).collect();
    assert_eq!(rows, native);
    assert!(rows.iter().flatten().any(|&p| p == 255), "some points never escape");
    assert!(rows.iter().flatten().any(|&p| p < 64), "some points escape within a few iterations");
}

#[test]
fn map_of_nothing_is_empty() {
    let pool = demo_pool(2);
    let none: Vec<f64> = pool.map("sqrt", Vec::<f64>::new()).unwrap();
    assert!(none.is_empty());
}

#[test]
fn map_fails_fast_with_the_failing_input() {
    let pool = demo_pool(2);
    let err = pool.map::<_, u32>("fail_if_odd", [0u32, 2, 4, 7, 8]).unwrap_err();
    let err = common::task_error(err);
    assert_eq!(err.index, 3);
    assert_eq!(err.failure, TaskFailure::Failed("7 is odd".into()));
}

#[test]
fn map_each_reports_every_input() {
    let pool = demo_pool(2);
    let results = pool.map_each::<_, u32>("fail_if_odd", 0..6u32).unwrap();
    assert_eq!(results.len(), 6);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(half) => assert_eq!(*half as usize, i / 2),
            Err(e) => {
                assert_eq!(e.index, i);
                assert_eq!(e.failure, TaskFailure::Failed(format!("{i} is odd")));
            }
        }
    }
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
}

#[test]
fn imap_streams_in_order() {
    let pool = demo_pool(2);
    let roots: Vec<f64> = pool.imap::<_, f64>("sqrt", (0..1000).map(f64::from)).unwrap().map(Result::unwrap).collect();
    assert_eq!(roots.len(), 1000);
    assert!(roots.iter().enumerate().all(|(i, r)| *r == (i as f64).sqrt()));
}

#[test]
fn imap_unordered_yields_every_index_once() {
    let pool = demo_pool(3);
    let mut seen = BTreeMap::new();
    for (index, result) in pool.imap_unordered::<_, i64>("add", (0..500i64).map(|i| (i, i))).unwrap() {
        assert!(seen.insert(index, result.unwrap()).is_none(), "index {index} twice");
    }
    assert_eq!(seen.len(), 500);
    assert!(seen.iter().all(|(i, v)| *v == 2 * *i as i64));
}

#[test]
fn next_ready_takes_only_results_already_there_in_either_order() {
    let pool = demo_pool(2);
    // Chunks of 10: after one result is waited for, the other nine of its
    // chunk are there; nothing is before the first wait.
    let sqrt = pool.task("sqrt").unwrap().chunk_size(10);
    let mut ordered = sqrt.imap::<_, f64>((0..40).map(f64::from)).unwrap();
    assert!(ordered.next_ready().is_none(), "a result before any wait");
    let mut roots = vec![ordered.next().unwrap().unwrap()];
    for _ in 0..9 {
        roots.push(ordered.next_ready().expect("the rest of the first chunk").unwrap());
    }
    roots.extend(ordered.map(Result::unwrap));
    assert_eq!(roots, (0..40).map(|i| f64::from(i).sqrt()).collect::<Vec<_>>());

    let mut unordered = sqrt.imap_unordered::<_, f64>((0..40).map(f64::from)).unwrap();
    assert!(unordered.next_ready().is_none(), "a result before any wait");
    let mut seen = BTreeMap::new();
    let (index, root) = unordered.next().unwrap();
    seen.insert(index, root.unwrap());
    for _ in 0..9 {
        let (index, root) = unordered.next_ready().expect("the rest of the first chunk");
        seen.insert(index, root.unwrap());
    }
    seen.extend(unordered.map(|(index, root)| (index, root.unwrap())));
    assert_eq!(seen.into_values().collect::<Vec<_>>(), (0..40).map(|i| f64::from(i).sqrt()).collect::<Vec<_>>());
}

#[test]
fn submit_returns_a_handle_to_wait_on() {
    let pool = demo_pool(2);
    let handles: Vec<_> = (0..10i64).map(|i| pool.submit::<_, i64>("add", (i, 100i64)).unwrap()).collect();
    let sums: Vec<i64> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(sums, (100..110).collect::<Vec<_>>());
}

#[test]
fn a_handle_can_be_polled_with_a_timeout() {
    let pool = demo_pool(1);
    let handle = pool.submit::<_, u64>("pi_hits", (2_000_000u64, 7u64)).unwrap();
    let mut handle = handle;
    let result = loop {
        match handle.wait_timeout(Duration::from_millis(5)) {
            Ok(result) => break result,
            Err(pending) => handle = pending,
        }
    };
    assert_eq!(result.unwrap(), guest_tasks::monte_carlo::pi_hits(2_000_000, 7));
}

#[test]
fn a_handle_is_a_future() {
    let pool = demo_pool(2);
    let handle = pool.submit::<_, i64>("add", (1i64, 2i64)).unwrap();
    assert_eq!(pollster::block_on(handle).unwrap(), 3);
    let failing = pool.submit::<_, u32>("fail_if_odd", 3u32).unwrap();
    let err = pollster::block_on(failing).unwrap_err();
    assert_eq!(err.failure, TaskFailure::Failed("3 is odd".into()));
}

#[test]
fn broadcast_runs_once_per_worker() {
    let pool = demo_pool(3);
    let results = pool.broadcast::<_, u32>("defined_last", 41u32).unwrap();
    assert_eq!(results, vec![Ok(42), Ok(42), Ok(42)]);
    let failures = pool.broadcast::<_, u32>("fail_if_odd", 1u32).unwrap();
    for (worker, result) in failures.into_iter().enumerate() {
        let err = result.unwrap_err();
        assert_eq!((err.index, err.failure), (worker, TaskFailure::Failed("1 is odd".into())));
    }
}

#[test]
fn per_call_chunk_sizes_do_not_change_results() {
    let pool = demo_pool(2);
    let inputs: Vec<(u64, u64)> = (0..40u64).map(|seed| (1000, seed)).collect();
    let reference: Vec<f64> = pool.map("monte_carlo_pi", inputs.clone()).unwrap();
    for chunk in [1usize, 3, 7, 40, 1000] {
        let got: Vec<f64> = pool.task("monte_carlo_pi").unwrap().chunk_size(chunk).map(inputs.clone()).unwrap();
        assert_eq!(got, reference, "chunk size {chunk}");
    }
}

#[test]
fn results_do_not_depend_on_the_worker_count() {
    let inputs: Vec<(u64, u64)> = (0..24u64).map(|seed| (20_000, seed)).collect();
    let run = |workers| -> Vec<u64> { demo_pool(workers).map("pi_hits", inputs.clone()).unwrap() };
    let one = run(1);
    assert_eq!(run(2), one);
    assert_eq!(run(4), one);
    let native: Vec<u64> = inputs.iter().map(|&(n, s)| guest_tasks::monte_carlo::pi_hits(n, s)).collect();
    assert_eq!(one, native);
}

#[test]
fn borrowed_and_owned_strings_both_work() {
    let pool = demo_pool(2);
    let texts = ["one", "two words", "", "  three   little words "];
    let owned: Vec<u64> = pool.map("word_count", texts.iter().map(|s| s.to_string())).unwrap();
    let borrowed: Vec<u64> = pool.map("word_count", texts).unwrap();
    assert_eq!(owned, vec![1, 2, 0, 3]);
    assert_eq!(borrowed, owned);
    let freq: BTreeMap<String, u32> = pool.call("word_frequencies", "The cat, the hat.").unwrap();
    assert_eq!(freq.get("the"), Some(&2));
    assert_eq!(freq.get("cat"), Some(&1));
}

#[test]
fn the_pool_describes_its_tasks() {
    let pool = demo_pool(1);
    let names: Vec<&str> = pool.tasks().iter().map(|t| t.name.as_str()).collect();
    for expected in ["sqrt", "mandel_row", "monte_carlo_pi", "word_count", "divide", "parse_int", "defined_last"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let row = pool.task("mandel_row").unwrap();
    assert_eq!(row.info().to_string(), "mandel_row(y: u32, width: u32, height: u32, max_iter: u32) -> Vec<u8>");
    assert!(row.info().doc.starts_with("Row `y`"), "{}", row.info().doc);
}

#[test]
fn the_pool_is_shared_between_threads() {
    let pool = demo_pool(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4i64)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || pool.map::<_, i64>("add", (0..200i64).map(|i| (i, t))).unwrap())
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            let sums = h.join().unwrap();
            assert!(sums.iter().enumerate().all(|(i, s)| *s == i as i64 + t as i64));
        }
    });
}

#[test]
fn arguments_are_copied_in_and_results_copied_out() {
    let pool = demo_pool(1);
    let v = vec![3.0f64, 4.0];
    let unit: Vec<f64> = pool.call("normalize", &v).unwrap();
    assert_eq!(unit, vec![0.6, 0.8]);
    assert_eq!(v, vec![3.0, 4.0], "the caller's vector is untouched");
}

#[test]
fn pools_that_never_spin_give_the_same_results() {
    let pool = wasmpool::Pool::builder()
        .module_file(guest_tasks::WASM_PATH)
        .workers(2)
        .idle_spin(Duration::ZERO)
        .build()
        .unwrap();
    let sum: i64 = pool.call("add", (40i64, 2i64)).unwrap();
    assert_eq!(sum, 42);
    let roots: Vec<f64> = pool.task("sqrt").unwrap().chunk_size(1).map((0..200).map(f64::from)).unwrap();
    assert_eq!(roots, (0..200).map(|x| f64::from(x).sqrt()).collect::<Vec<_>>());
    let handle = pool.submit::<_, i64>("add", (1i64, 2i64)).unwrap();
    assert_eq!(handle.wait().unwrap(), 3);
}
