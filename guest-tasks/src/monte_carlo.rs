//! Monte-Carlo estimate of π and a random walk: seeded explicitly
//! (`pi_hits`), or with the seed the pool gives each task (`pi_hits_seeded`,
//! `random_walk`), so every run is repeatable.

use wasmpool_guest::task;

/// SplitMix64: a tiny, well-mixed generator; the same seed gives the same
/// stream on every platform and in every worker.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How many of `samples` random points of the unit square fall inside the
/// quarter circle, drawing from a generator seeded with `seed`.
#[task]
pub fn pi_hits(samples: u64, seed: u64) -> u64 {
    let mut rng = SplitMix64::new(seed);
    count_hits(samples, || rng.next_f64())
}

/// How many of `samples` points, each drawn as x then y from `next_f64`,
/// fall inside the quarter circle.
fn count_hits(samples: u64, mut next_f64: impl FnMut() -> f64) -> u64 {
    let mut hits = 0;
    for _ in 0..samples {
        let (x, y) = (next_f64(), next_f64());
        if x * x + y * y < 1.0 {
            hits += 1;
        }
    }
    hits
}

/// An estimate of π from `samples` points drawn with `seed`.
#[task]
pub fn monte_carlo_pi(samples: u64, seed: u64) -> f64 {
    if samples == 0 {
        return 0.0;
    }
    4.0 * pi_hits(samples, seed) as f64 / samples as f64
}

/// How many of `samples` random points of the unit square fall inside the
/// quarter circle, drawn from this task's own generator
/// ([`wasmpool_guest::rng`]): no seed to pass, and still the same count for
/// the same pool seed, whatever the workers or their order.
#[task]
pub fn pi_hits_seeded(samples: u64) -> u64 {
    let mut rng = wasmpool_guest::rng();
    count_hits(samples, || rng.next_f64())
}

/// A random walk of `steps` normally distributed steps (Box-Muller: `ln`,
/// `sqrt`, `cos`) with this task's generator: where it ends, and the
/// farthest it got from 0. Float-heavy, so its bits show whether every
/// platform and worker computes the same.
#[task]
pub fn random_walk(steps: u32) -> (f64, f64) {
    let mut rng = wasmpool_guest::rng();
    let (mut position, mut farthest) = (0.0f64, 0.0f64);
    for _ in 0..steps {
        // 1 - u lies in (0, 1]: its logarithm is finite.
        let (u, v) = (1.0 - rng.next_f64(), rng.next_f64());
        let step = (-2.0 * u.ln()).sqrt() * (core::f64::consts::TAU * v).cos();
        position += step;
        farthest = farthest.max(position.abs());
    }
    (position, farthest)
}
