//! Build script: finds which optional test data and services this build can use, so the suites
//! that need what is missing show up as *ignored*, with their reason, in every `cargo test`
//! summary, instead of passing without checking anything.
//!
//! Invariant: it only reads the environment and looks for directories; the library, the binary
//! and the benches do not depend on anything it sets (only `#[cfg_attr(..., ignore)]` in tests
//! and `WRIT_SHARED_DIR`, which the tests read to find the data).
//! Must not depend on any crate.
//!
//! - `WRIT_SHARED` (default `../shared` beside the checkout): where the peer suites live. For each
//!   data directory of [`SHARED_DATA`] that is absent, it sets `cfg(writ_no_shared = "<dir>")`.
//! - `WRIT_TEST_POSTGRES_URL` unset or empty sets `cfg(writ_no_postgres)`.
//! - `WRIT_REQUIRE_CONFORMANCE=1` and `WRIT_REQUIRE_POSTGRES=1` (exported by `.ci/run`) set
//!   neither: the suites then run and fail, naming what is missing.

use std::path::PathBuf;

/// The directories under `conformance/` of the shared data that some test suite reads.
const SHARED_DATA: &[&str] = &[
    "openfga/suites",
    "openfga/language",
    "spicedb/integration",
    "spicedb/schemadsl-parser",
    "spicedb/validationfile",
];

fn required(variable: &str) -> bool {
    println!("cargo::rerun-if-env-changed={variable}");
    std::env::var(variable).is_ok_and(|v| v == "1")
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let values: Vec<String> = SHARED_DATA.iter().map(|d| format!("\"{d}\"")).collect();
    println!("cargo::rustc-check-cfg=cfg(writ_no_shared, values({}))", values.join(", "));
    println!("cargo::rustc-check-cfg=cfg(writ_no_postgres)");

    println!("cargo::rerun-if-env-changed=WRIT_SHARED");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let shared = match std::env::var_os("WRIT_SHARED").filter(|v| !v.is_empty()) {
        Some(dir) => manifest.join(dir),
        None => manifest.join("../shared"),
    };
    println!("cargo::rustc-env=WRIT_SHARED_DIR={}", shared.display());
    let require_conformance = required("WRIT_REQUIRE_CONFORMANCE");
    for dir in SHARED_DATA {
        let path: PathBuf = shared.join("conformance").join(dir);
        if path.is_dir() {
            // Present: rebuild if it goes away. (An absent directory is not watched: cargo would
            // then rebuild the crate on every run; `tests/skipped.rs` notices one that appeared.)
            println!("cargo::rerun-if-changed={}", path.display());
        } else if !require_conformance {
            println!("cargo::rustc-cfg=writ_no_shared=\"{dir}\"");
        }
    }

    println!("cargo::rerun-if-env-changed=WRIT_TEST_POSTGRES_URL");
    let postgres = std::env::var("WRIT_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty());
    let require_postgres = required("WRIT_REQUIRE_POSTGRES");
    if !postgres && !require_postgres {
        println!("cargo::rustc-cfg=writ_no_postgres");
    }
}
