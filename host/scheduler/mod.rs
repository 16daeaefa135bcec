//! Scheduling: splitting maps into jobs, feeding them to the workers with
//! backpressure, and putting results back in order.

pub(crate) mod chunking;
pub(crate) mod stream;
