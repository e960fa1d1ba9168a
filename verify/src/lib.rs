//! Benchmarks and model-based tests of actix-leaky-bucket live in `benches/` and `tests/`.
