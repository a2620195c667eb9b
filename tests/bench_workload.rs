//! The HTTP benches' workload (`benches/http_workload.py`, in Python) is issue 34's seeded
//! workload of `benches/library.rs` (`benches/support/issue34.rs`): both print the same
//! fingerprint, so a change to one generator that the other does not follow fails here instead
//! of making the two benches quietly time different graphs.

#[path = "../benches/support/issue34.rs"]
mod issue34;

use std::process::Command;

#[test]
fn http_bench_workload_matches_the_library_bench_workload() {
    // More checks than one HTTP batch, so the check draws (and their skips) are covered well past
    // the first few.
    let checks = "2000";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/http_workload.py");
    let output = Command::new("python3")
        .args([script, "--digest", checks])
        .output()
        .unwrap_or_else(|error| panic!("python3 is needed to run {script}: {error}"));
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    let python = String::from_utf8_lossy(&output.stdout);
    let rust = issue34::digest(checks.parse().unwrap());
    assert_eq!(python.trim(), rust, "benches/http_workload.py and benches/support/issue34.rs draw different workloads");
    assert!(rust.starts_with("tuples=133869 checks=2000 "), "{rust}");
}
