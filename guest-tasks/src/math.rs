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

/// The bit patterns of IEEE 754 results computed from `a` and `b`: the
/// four operations, the square root, the fused multiply-add, min, max and
/// the conversions to `f32` and back. With `0/0`, `∞ − ∞` or `√−1` these
/// are NaNs, whose sign and payload Wasm leaves to the CPU unless the
/// runtime canonicalizes them: the test of cross-platform bit identity.
#[task]
pub fn float_bits(a: f64, b: f64) -> Vec<u64> {
    let (fa, fb) = (a as f32, b as f32);
    let single = |x: f32| u64::from(x.to_bits());
    vec![
        (a + b).to_bits(),
        (a - b).to_bits(),
        (a * b).to_bits(),
        (a / b).to_bits(),
        a.sqrt().to_bits(),
        a.mul_add(b, a).to_bits(),
        a.min(b).to_bits(),
        a.max(b).to_bits(),
        single(fa / fb),
        single(fa.sqrt()),
        f64::from(fa - fb).to_bits(),
    ]
}
