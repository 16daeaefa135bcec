//! Scheduling: splitting maps into jobs, feeding them to the workers with
//! backpressure, and putting results back in order.

pub mod chunking;
pub mod stream;
