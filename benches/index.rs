//! Placeholder until the index benches land.
fn main() {}
