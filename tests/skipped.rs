//! The suites a run may skip, and how a skip stays visible: each suite that needs the shared peer
//! data (`../shared/conformance`, or `WRIT_SHARED`) or a PostgreSQL server (`WRIT_TEST_POSTGRES_URL`)
//! carries `#[cfg_attr(writ_no_shared = "<dir>", ignore = "...")]` or
//! `#[cfg_attr(writ_no_postgres, ignore = "...")]`, set by `build.rs`, so `cargo test` counts it as
//! *ignored* with its reason instead of passing it. With `WRIT_REQUIRE_CONFORMANCE=1` or
//! `WRIT_REQUIRE_POSTGRES=1` (as `.ci/run` exports) the build sets neither, and the suite fails
//! through [`shared_data`] or [`postgres_url`], naming what is missing.

use std::path::PathBuf;

/// The shared data directory `conformance/<dir>`; a test that runs without it fails naming it.
pub fn shared_data(dir: &str) -> PathBuf {
    let path = PathBuf::from(env!("WRIT_SHARED_DIR")).join("conformance").join(dir);
    assert!(
        path.is_dir(),
        "{} not found: this suite needs the shared peer data beside the checkout (or set WRIT_SHARED); \
         without WRIT_REQUIRE_CONFORMANCE=1 it is listed as ignored",
        path.display()
    );
    path
}

/// The PostgreSQL server of the tests; a test that runs without one fails saying how to start it.
pub fn postgres_url() -> String {
    match std::env::var("WRIT_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "WRIT_TEST_POSTGRES_URL is not set: this test needs a PostgreSQL server (start one with \
             .ci/postgres.sh); without WRIT_REQUIRE_POSTGRES=1 it is listed as ignored"
        ),
    }
}

/// Each shared data directory, and whether the build found it absent (and so ignores its suites).
const BUILT_WITHOUT: &[(&str, bool)] = &[
    ("openfga/suites", cfg!(writ_no_shared = "openfga/suites")),
    ("openfga/language", cfg!(writ_no_shared = "openfga/language")),
    ("spicedb/integration", cfg!(writ_no_shared = "spicedb/integration")),
    ("spicedb/schemadsl-parser", cfg!(writ_no_shared = "spicedb/schemadsl-parser")),
    ("spicedb/validationfile", cfg!(writ_no_shared = "spicedb/validationfile")),
];

/// `build.rs` watches only the data directories that exist (watching an absent one would rebuild
/// the crate on every run), so data added after a build would leave its suites ignored: say so.
#[test]
fn no_suite_is_ignored_for_data_that_is_there() {
    let shared = PathBuf::from(env!("WRIT_SHARED_DIR")).join("conformance");
    let stale: Vec<String> = BUILT_WITHOUT
        .iter()
        .filter(|(dir, absent)| *absent && shared.join(dir).is_dir())
        .map(|(dir, _)| shared.join(dir).display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "{} appeared after this build, so their suites were ignored: `touch build.rs` and rerun",
        stale.join(", ")
    );
    let url_now = std::env::var("WRIT_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty());
    assert!(
        !(cfg!(writ_no_postgres) && url_now),
        "WRIT_TEST_POSTGRES_URL is set now but was not when this test binary was built: rerun through `cargo test`"
    );
}
