//! Tasks that talk to the host while they run: messages through a
//! `Sender`, and progress reports. The host reads them from an `Exchange`
//! (or a progress callback) as they come.

use wasmpool_guest::{Sender, progress, task};

/// The Collatz sequence from `n`: sends every value it passes through, and
/// returns the number of steps to reach 1.
#[task]
pub fn collatz(mut n: u64, values: Sender<u64>) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n.is_multiple_of(2) { n / 2 } else { n.saturating_mul(3).saturating_add(1) };
        // Without a listener the values are dropped; the steps still count.
        let _ = values.send(&n);
        steps += 1;
    }
    steps
}

/// The sum of `0..n`, computed the slow way, reporting progress every tenth
/// of the way and once at the end (`done == total` exactly once).
#[task]
pub fn slow_sum(n: u64) -> u64 {
    let step = (n / 10).max(1);
    let mut sum = 0u64;
    for i in 0..n {
        sum = sum.wrapping_add(i);
        if (i + 1).is_multiple_of(step) && i + 1 < n {
            progress(i + 1, n);
        }
    }
    progress(n, n);
    sum
}

/// Sends `count` messages of `size` bytes each (a flood, for tests of the
/// host's bounds) and returns how many were delivered.
#[task]
pub fn flood(count: u32, size: u32, out: Sender<Vec<u8>>) -> u32 {
    let message = vec![7u8; size as usize];
    (0..count).filter(|_| out.send(&message).is_ok()).count() as u32
}

/// Sends `value`, then computes forever: a host sees the message while the
/// task still runs, and must cancel the task (or let its deadline stop it).
#[task]
pub fn send_then_spin(value: u32, out: Sender<u32>) -> u64 {
    let _ = out.send(&value);
    let mut x = 0u64;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collatz_sends_the_sequence() {
        let values = Sender::new();
        assert_eq!(collatz(6, values.clone()), 8);
        assert_eq!(values.sent(), [3, 10, 5, 16, 8, 4, 2, 1]);
    }

    #[test]
    fn slow_sum_sums() {
        assert_eq!(slow_sum(100), 4950);
        assert_eq!(slow_sum(0), 0);
    }
}
