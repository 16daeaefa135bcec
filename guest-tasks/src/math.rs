//! Numeric one-liners: the tasks of Hinsen's first slide.

use wasmpool_guest::task;

/// Square root of `x` (IEEE 754, correctly rounded on every platform).
#[task]
pub fn sqrt(x: f64) -> f64 {
    x.sqrt()
}

/// Sum of two integers; the smallest useful round trip.
#[task]
pub fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

/// Does nothing: measures the cost of a call itself.
#[task]
pub fn noop() {}

/// A float-heavy kernel: `n` steps of a damped oscillator integrated with
/// explicit Euler, returning the final position and velocity. Its result is
/// sensitive to every rounding, so it shows whether two runs agree bit for bit.
#[task]
pub fn oscillator(steps: u32, dt: f64) -> (f64, f64) {
    let (mut x, mut v) = (1.0f64, 0.0f64);
    for _ in 0..steps {
        let a = -4.0 * x - 0.1 * v + (x * 0.5).sin() * 0.01;
        v += a * dt;
        x += v * dt;
    }
    (x, v)
}

/// `v` scaled to unit length. The task gets its own copy of `v`: the
/// caller sees the change only through the returned vector.
#[task]
pub fn normalize(mut v: Vec<f64>) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
