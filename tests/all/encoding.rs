//! Property tests: any arguments cross into the guest and back intact.

use crate::common;

use proptest::prelude::*;
use std::sync::OnceLock;
use wasmpool::Pool;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| common::demo_pool(2))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(200)))]

    #[test]
    fn mixed_arguments_round_trip(a: i64, b: String, c: Vec<f64>, d: Option<u8>) {
        let back: (i64, String, Vec<f64>, Option<u8>) =
            pool().call("echo_mixed", (a, b.clone(), c.clone(), d)).unwrap();
        prop_assert_eq!(back.0, a);
        prop_assert_eq!(back.1, b);
        // Compare bits: NaNs included, every float must come back unchanged.
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back.2), bits(&c));
        prop_assert_eq!(back.3, d);
    }

    #[test]
    fn byte_buffers_of_any_size_round_trip(data in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        let back: Vec<u8> = pool().call("echo_bytes", data.clone()).unwrap();
        prop_assert_eq!(back, data.clone());
        let len: u64 = pool().call("byte_len", data.clone()).unwrap();
        prop_assert_eq!(len, data.len() as u64);
    }

    #[test]
    fn maps_agree_with_native_rust(xs in proptest::collection::vec(-1e300f64..1e300, 0..200), chunk in 0usize..20) {
        let roots: Vec<f64> = pool().task("sqrt").unwrap().chunk_size(chunk).map(xs.clone()).unwrap();
        // Bit for bit, but for the sign of a NaN: the pool canonicalizes the
        // NaN of a negative's root, native x86-64 makes it negative.
        let canonical = |x: f64| if x.is_nan() { f64::NAN.to_bits() } else { x.to_bits() };
        let native: Vec<u64> = xs.iter().map(|x| canonical(x.sqrt())).collect();
        prop_assert_eq!(roots.iter().map(|r| r.to_bits()).collect::<Vec<_>>(), native);
    }
}

#[test]
fn a_large_argument_crosses_intact() {
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let len: u64 = pool().call("byte_len", &big).unwrap();
    assert_eq!(len, big.len() as u64);
}
