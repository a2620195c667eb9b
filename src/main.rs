//! The `writ` binary: installs the allocator and hands the command line to [`writ::cli::run`].
//! Thin by design: the subcommands, their arguments and their bodies live in `writ::cli`.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: on the 1M-tuple drive graph a list-objects of 110k
/// results took 135 ms with glibc's malloc and 19 ms with mimalloc (one run each, loaded 2-core
/// machine, `cargo bench --bench lookup`): the index leaves glibc's heap with long free lists, and
/// lookups allocate many small bitmaps and strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    writ::cli::run()
}
