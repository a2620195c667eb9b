//! Placeholder until the check benches land.
fn main() {}
